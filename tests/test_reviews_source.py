"""The `reviews` source kind: Step 7's export read back like any other source; no export yet is zero rows."""
import json
from pathlib import Path

import pytest
import yaml

from core.errors import PipelineError
from core.params import build
from Step_1.config import SourceConfig
from Step_1.sources import IMPORTERS
from Step_3.taxonomy import TaxonomyConfig, build_taxonomy, map_label

TAXONOMY = TaxonomyConfig(classes=["benign", "abuse_hate"], positive="abuse_hate")


def reviews_source(path: Path, **extra) -> SourceConfig:
    return build(SourceConfig, {"name": "reviews", "kind": "reviews", "path": str(path), **extra},
                 where="prepare.sources[0]")


def write_export(folder: Path, rows: list[dict]) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for row in rows:
        (folder / row["image"]).write_bytes(b"\x89PNG fake")
    (folder / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


ROWS = [{"id": 3, "image": "images/3.png", "text": "hello", "label": "benign"},
        {"id": 7, "image": "images/7.jpg", "text": "", "label": "abuse_hate"}]


def test_an_export_imports_with_class_names_mapped_to_themselves(tmp_path):
    source = reviews_source(write_export(tmp_path / "export", ROWS))
    rows, schema, rejected = IMPORTERS["reviews"](source, tmp_path / "out", 1)
    assert rejected == [] and schema == {"numeric": [], "categorical": []}
    assert [(r["local_id"], r["label"], r["split"], r["group"], r["text"]) for r in rows] == [
        ("3", "benign", None, None, "hello"), ("7", "abuse_hate", None, None, None)]
    assert rows[1]["image"] == str((tmp_path / "export" / "images" / "7.jpg").resolve())
    taxonomy = build_taxonomy(TAXONOMY, [{"name": "reviews", "kind": "reviews", "label_map": source.label_map}])
    assert [map_label(taxonomy, "reviews", r["label"], where="row") for r in rows] == [0, 1]
    with pytest.raises(PipelineError, match=r"manifest row 'reviews-9'.*'hateful'.*allowed values"):
        map_label(taxonomy, "reviews", "hateful", where="manifest row 'reviews-9'")


@pytest.mark.parametrize("made", ["nothing", "empty folder", "empty file"])
def test_no_export_yet_is_zero_rows(tmp_path, capsys, made):
    folder = tmp_path / "reviews"
    if made != "nothing":
        folder.mkdir()
    if made == "empty file":
        (folder / "reviews.jsonl").write_text("")
    assert IMPORTERS["reviews"](reviews_source(folder), tmp_path / "out", 1) == ([], {"numeric": [], "categorical": []},
                                                                                 [])
    assert "0 rows" in capsys.readouterr().out


def test_a_bad_label_fails_naming_file_and_line(tmp_path):
    folder = write_export(tmp_path / "export", [ROWS[0], {**ROWS[1], "label": None}])
    with pytest.raises(PipelineError, match=r"reviews\.jsonl:2: label None is not a class name"):
        IMPORTERS["reviews"](reviews_source(folder), tmp_path / "out", 1)
    renamed = reviews_source(folder, label_map={"benign": "benign"})
    write_export(folder, [ROWS[0], ROWS[1]])
    with pytest.raises(PipelineError, match=r"reviews\.jsonl:2: label 'abuse_hate' is not in the label_map"):
        IMPORTERS["reviews"](renamed, tmp_path / "out", 1)


def test_only_reviews_may_leave_out_the_label_map(tmp_path):
    assert reviews_source(tmp_path).label_map == {}
    with pytest.raises(PipelineError, match="needs a label_map"):
        build(SourceConfig, {"name": "x", "kind": "jsonl", "path": str(tmp_path)}, where="prepare.sources[0]")


def test_make_check_accepts_a_missing_export_and_names_an_unknown_class(repo_root, tmp_path):
    from tools.check_params import check

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["prepare"]["sources"].append({"name": "reviews", "kind": "reviews", "path": str(tmp_path / "none")})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert not [p for p in check(str(tmp_path / "params.yaml")) if "reviews" in p]
    write_export(tmp_path / "none", [ROWS[0], {**ROWS[1], "label": "hatefull"}])
    problems = check(str(tmp_path / "params.yaml"))
    assert any("reviews.jsonl:2: label 'hatefull' is not one of ['abuse_hate', 'benign']" in p for p in problems)
