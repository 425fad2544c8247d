"""Write the numbers of README.md and docs/*.md from metrics/*.json, so no figure in them is typed by hand.

A region between the marker comments `<!-- numbers:NAME -->` and `<!-- /numbers -->` is replaced by what the
generator NAME (NAMES below) makes from the metrics files. `--check` only compares, and exits 1 naming every file
whose regions are out of date. Files are written atomically.

    python -m tools.docs_numbers            # rewrite README.md and docs/*.md
    python -m tools.docs_numbers --check    # exit 1 when a document is out of date
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from tools.docs_results import (
    DocsError,
    Metrics,
    adaptation,
    models_of,
    pm,
    results_diffs,
    results_full,
    results_headline,
    results_table,
    scored,
    signed,
    table,
)

REGION = re.compile(r"(<!-- numbers:([a-z0-9-]+) -->\n)(.*?)(<!-- /numbers -->)", re.DOTALL)
OPENING = re.compile(r"<!-- numbers:([a-z0-9-]+) -->")
CONDITIONS = ("jpeg", "blur", "noise", "downscale", "rotate", "crop", "brightness", "border", "ocr_noise",
              "dropped_words", "missing_text", "missing_vision", "missing_tabular", "missing_temporal")


def true_label(m: Metrics) -> list[str]:
    """AUROC against the generator's true label (vs_true_label) next to the annotators' majority."""
    rows, names = [], models_of(m, "expert") + models_of(m, "fusion")
    splits = scored(*(found for n in names for found in (m.get(n), m.get(n)["vs_true_label"])))
    for name in names:
        scores = m.get(name)
        rows.append([name] + [f"{pm(scores[s], 'auroc')} / {pm(scores['vs_true_label'][s], 'auroc')}" for s in splits])
    return table(["model"] + [f"{s} AUROC: majority / true label" for s in splits], rows)


def modality_removal(m: Metrics) -> list[str]:
    """Each saved fusion head on test_seen with one modality removed at inference."""
    names = models_of(m, "fusion")
    removed = sorted({key for name in names for key in m.get(name).get("modality_removal_test_seen", {})})
    rows = [[name, f"{m.get(name)['test_seen']['auroc']:.3f}"]
            + [f"{m.get(name).get('modality_removal_test_seen', {}).get(key, {}).get('auroc', float('nan')):.3f}"
               for key in removed] for name in names]
    return table(["fusion", "all modalities"] + [key.replace("_", " ") for key in removed], rows)


def interval(v: dict, key: str) -> str:
    """'12% [6%, 19%]' (a rate and its bootstrap 95 % interval), or the bare rate without one."""
    if f"{key}_ci95" not in v:
        return f"{v[key]:.0%}"
    low, high = v[f"{key}_ci95"]
    return f"{v[key]:.0%} [{low:.0%}, {high:.0%}]"


def unfamiliar(m: Metrics) -> list[str]:
    """Per fusion (its seed ensemble): flagged at 0.5 and at the calibrated max-F1 operating point, with intervals."""
    methods = m.get("unfamiliar")["methods"]
    rows = [[name, interval(v, "fpr"), interval(v, "fpr_max_f1") if "fpr_max_f1" in v else "n/a",
             f"{v['mean_positive_probability']:.3f}"] for name, v in sorted(methods.items())]
    return table(["fusion", "flagged at 0.5 [95 % interval]", "flagged at the calibrated max-F1 point",
                  "mean positive probability"], rows)


def experts(m: Metrics) -> list[str]:
    """The experts' metrics files: AUROC and macro-F1 per split; the tabular expert's ablation rows too."""
    rows, splits = [], scored(*(m.get(n) for n in models_of(m, "expert")))
    for name in models_of(m, "expert"):
        variants = [(name, m.get(name))] + sorted((f"{name}, {k.replace('_', ' ')}", v)
                                                  for k, v in m.get(name).get("ablation", {}).items())
        rows += [[label] + [pm(scores[s], key) for key in ("auroc", "macro_f1") for s in splits]
                 for label, scores in variants]
    return table(["expert"] + [f"{s} {k}" for k in ("AUROC", "macro-F1") for s in splits], rows)


def crossval(m: Metrics) -> list[str]:
    cv = m.get("crossval")
    rows = [[name] + [pm(model[s], "auroc") for s in ("held_out", "test_seen", "test_unseen")]
            for name, model in sorted(cv["models"].items())]
    return [f"{cv['folds']} folds grouped by `{cv['group_by']}`; AUROC, mean ± std over the folds:", ""] + table(
        ["model", "held-out folds", "test_seen", "test_unseen"], rows)


def calibration(m: Metrics) -> list[str]:
    """ECE (15 equal-width bins) before → after temperature scaling, per split."""
    cal = m.get("evaluation")["calibration"]
    splits = scored(*cal.values())
    rows = [[name] + [f"{cal[name][s]['ece_before']:.3f} → {cal[name][s]['ece_after']:.3f}" for s in splits]
            for name in sorted(cal)]
    return table(["model"] + [f"ECE {s}" for s in splits], rows)


def operating_points(m: Metrics) -> list[str]:
    """Precision / recall / flag rate at each operating point, for the best fusion and the best expert."""
    points, comparison = m.get("evaluation")["operating_points"], m.get("comparison")
    rows, names = [], (comparison["best_fusion"], comparison["best_expert"])
    splits = scored(*(by_split for name in names for by_split in points.get(name, {}).values()))
    for name in names:
        for point, by_split in sorted(points.get(name, {}).items()):
            rows.append([name, point] + [" / ".join("–" if by_split[s].get(k) is None else f"{by_split[s][k]:.2f}"
                                                    for k in ("precision", "recall", "flag_rate")) for s in splits])
    return table(["model", "operating point"] + [f"{s} precision / recall / flag rate" for s in splits], rows)


def robustness(m: Metrics) -> list[str]:
    """AUROC drop from clean per condition (positive: worse), one table per split; the mean drop per fusion."""
    evaluation = m.get("evaluation")
    found = evaluation["robustness"]
    every = {c for model in found.values() for c in model if c != "clean"}
    conditions = [c for c in CONDITIONS if c in every] + sorted(every - set(CONDITIONS))
    lines = []
    for split in scored(*(model["clean"] for model in found.values())):
        rows = [[name, f"{found[name]['clean'][split]['auroc']:.3f}"]
                + [signed(found[name][c][split]["auroc_drop"]) if found[name].get(c) else "–" for c in conditions]
                for name in sorted(found)]
        lines += [f"AUROC drop from clean, {split}:", ""] + table(["model", "clean AUROC"] + conditions, rows) + [""]
    drops = evaluation.get("robustness_mean_auroc_drop", {})
    return lines + ["Mean AUROC drop over conditions and splits: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in sorted(drops.items()))]


def paired(m: Metrics) -> list[str]:
    """Paired bootstrap of AUROC differences (the same resampled memes score both models)."""
    pairs = m.get("evaluation")["paired"]
    splits = scored(*pairs.values())
    rows = [[name.replace("_vs_", " − ")] + [f"{signed(v[s]['auroc_diff'])} [{signed(v[s]['auroc_diff_low'])}, "
                                            f"{signed(v[s]['auroc_diff_high'])}]" for s in splits]
            for name, v in sorted(pairs.items())]
    return table(["pair"] + [f"{s} AUROC difference [95 % interval]" for s in splits], rows)


def ocr(m: Metrics) -> list[str]:
    scores = m.get("ocr")
    return [f"OCR character error rate {scores['cer']:.1%}, exact-match rate {scores['exact_match']:.1%} "
            "against the gold captions (`metrics/ocr.json`)."]


NAMES = {"adaptation": adaptation, "results-table": results_table, "results-full": results_full, "results-headline": results_headline,
         "results-diffs": results_diffs, "true-label": true_label, "modality-removal": modality_removal,
         "unfamiliar": unfamiliar, "experts": experts, "crossval": crossval, "calibration": calibration,
         "operating-points": operating_points, "robustness": robustness, "paired": paired, "ocr": ocr}


def render(text: str, metrics: Metrics, where: str) -> str:
    """The document with every region rewritten."""
    regions = REGION.findall(text)
    if len(regions) != len(OPENING.findall(text)):
        raise DocsError(f"{where}: a `<!-- numbers:NAME -->` has no `<!-- /numbers -->` after it")

    def region(match: re.Match) -> str:
        name = match.group(2)
        if name not in NAMES:
            raise DocsError(f"{where}: unknown region {name!r}; known: {', '.join(sorted(NAMES))}")
        return match.group(1) + "\n".join(NAMES[name](metrics)) + "\n" + match.group(4)

    return REGION.sub(region, text)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def documents(root: Path) -> list[Path]:
    return [path for path in [root / "README.md"] + sorted((root / "docs").glob("*.md")) if path.is_file()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.docs_numbers", description=__doc__.split("\n\n")[0],
                                     epilog="regions: " + ", ".join(NAMES))
    parser.add_argument("files", nargs="*", type=Path, help="documents (default: README.md and docs/*.md)")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    parser.add_argument("--metrics", type=Path, default=None, help="metrics folder (default: <root>/metrics)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a document is out of date")
    args = parser.parse_args(argv)
    metrics = Metrics(args.metrics or args.root / "metrics")
    stale = []
    try:
        for path in args.files or documents(args.root):
            text = path.read_text(encoding="utf-8")
            new = render(text, metrics, str(path))
            if new != text:
                stale.append(path)
                if not args.check:
                    write_atomic(path, new)
    except DocsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path}")
    if args.check and stale:
        print("run `python -m tools.docs_numbers` to rewrite them", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
