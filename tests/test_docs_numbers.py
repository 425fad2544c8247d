"""tools.docs_numbers: a region is rewritten from the metrics files, and --check fails on a stale document."""
from __future__ import annotations

import json
from pathlib import Path

from tools import docs_numbers, docs_results


def scores(auroc: float, std: float = 0.01) -> dict:
    return {"auroc": auroc, "auroc_std": std, "macro_f1": auroc - 0.1, "macro_f1_std": std,
            "accuracy": auroc - 0.05, "accuracy_std": std}


def comparison(fusion_auroc: float) -> dict:
    return {"best_expert": "text_expert", "best_fusion": "fusion_gated", "best_fusion_minus_other_fusions": {},
            "fusion_minus_best_expert": {}, "selected_on": "val auroc (mean over seeds)",
            "models": {"text_expert": {"kind": "expert", **{s: scores(0.7) for s in docs_results.SPLITS}},
                       "fusion_gated": {"kind": "fusion", **{s: scores(fusion_auroc) for s in docs_results.SPLITS}}}}


def write_repo(root, fusion_auroc: float) -> None:
    (root / "metrics").mkdir(exist_ok=True)
    (root / "metrics" / "comparison.json").write_text(json.dumps(comparison(fusion_auroc)))
    (root / "docs").mkdir(exist_ok=True)


DOC = "# Results\n\nBefore.\n\n<!-- numbers:results-table -->\n| typed by hand |\n<!-- /numbers -->\n\nAfter.\n"


def test_region_is_regenerated_from_the_metrics_file(tmp_path):
    write_repo(tmp_path, 0.8812)
    (tmp_path / "docs" / "results.md").write_text(DOC)
    (tmp_path / "README.md").write_text("# Title, no regions\n")

    assert docs_numbers.main(["--root", str(tmp_path)]) == 0

    text = (tmp_path / "docs" / "results.md").read_text()
    assert "typed by hand" not in text
    assert text.startswith("# Results\n\nBefore.\n\n<!-- numbers:results-table -->\n| model | kind | val AUROC")
    assert "| fusion_gated * | fusion | 0.881 ± 0.010 | 0.881 ± 0.010 | 0.881 ± 0.010 |" in text
    assert "| text_expert * | expert | 0.700 ± 0.010 |" in text
    assert text.endswith("<!-- /numbers -->\n\nAfter.\n")
    assert (tmp_path / "README.md").read_text() == "# Title, no regions\n"
    assert not list(tmp_path.rglob("*.tmp"))
    assert docs_numbers.main(["--root", str(tmp_path), "--check"]) == 0


def test_check_fails_on_a_stale_document_and_writes_nothing(tmp_path, capsys):
    write_repo(tmp_path, 0.8812)
    doc = tmp_path / "README.md"
    doc.write_text(DOC)
    assert docs_numbers.main(["--root", str(tmp_path)]) == 0
    write_repo(tmp_path, 0.9021)  # the metrics moved; the document did not
    before = doc.read_text()

    assert docs_numbers.main(["--root", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out
    assert doc.read_text() == before

    assert docs_numbers.main(["--root", str(tmp_path)]) == 0
    assert "0.902 ± 0.010" in doc.read_text()
    assert docs_numbers.main(["--root", str(tmp_path), "--check"]) == 0


def test_unknown_region_and_missing_metrics_are_errors(tmp_path, capsys):
    (tmp_path / "README.md").write_text("<!-- numbers:no-such-table -->\n<!-- /numbers -->\n")
    assert docs_numbers.main(["--root", str(tmp_path)]) == 2
    assert "unknown region 'no-such-table'" in capsys.readouterr().err
    (tmp_path / "README.md").write_text("<!-- numbers:unfamiliar -->\n<!-- /numbers -->\n")
    assert docs_numbers.main(["--root", str(tmp_path)]) == 2
    assert "unfamiliar.json is missing" in capsys.readouterr().err


def test_the_repository_docs_match_its_metrics(capsys):
    """Every generated number in README.md and docs/ is the one in the committed metrics/*.json."""
    root = Path(docs_numbers.__file__).resolve().parents[1]
    assert docs_numbers.main(["--root", str(root), "--check"]) == 0, capsys.readouterr().out
