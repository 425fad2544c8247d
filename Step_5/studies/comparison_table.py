"""Print metrics/comparison.json as a table (used at the end of `make run`): per model the mean ± std over
seeds, and below it its seed ensemble (the averaged probabilities: what predict and evaluate use)."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import run_cli
from core.errors import PipelineError
from core.files import read_json

COLUMNS = (("val", "auroc"), ("val_unseen", "auroc"), ("test_seen", "auroc"), ("test_unseen", "auroc"),
           ("test_seen", "macro_f1"), ("test_unseen", "macro_f1"))
ALL_COLUMNS = tuple((s, k) for k in ("auroc", "macro_f1", "accuracy")
                    for s in ("val", "val_unseen", "test_seen", "test_unseen"))
NAMES = {"auroc": "AUROC", "macro_f1": "macro-F1", "accuracy": "accuracy"}


def cell(scores: dict | None, key: str, digits: int = 3) -> str:
    if not scores or scores.get(key) is None:
        return "n/a"
    if f"{key}_std" not in scores:  # a seed ensemble: one model, no spread
        return f"{scores[key]:.{digits}f}"
    return f"{scores[key]:.{digits}f} ± {scores[f'{key}_std']:.{digits}f}"


def verdict(name: str, versus: dict) -> str:
    parts = []
    for split, by_key in versus.items():
        c = by_key["auroc"]
        if c is not None:
            mark = "beyond" if c["beyond_noise"] else "within"
            parts.append(f"{split} AUROC {c['diff']:+.3f} ({mark} seed noise {c['seed_noise']:.3f})")
    return f"{name}: " + "; ".join(parts)


def head_parameters(reports_dir: Path | None, name: str) -> str:
    """A fusion head's parameter count from its reports/<name>.json ('' for experts or when unknown)."""
    path = reports_dir / f"{name}.json" if reports_dir else None
    count = read_json(path).get("parameters") if path and path.is_file() else None
    return f"{count:,}" if count is not None else ""


def format_table(result: dict, markdown: bool = False, full: bool = False, reports_dir: Path | None = None) -> str:
    """A fixed-width (or Markdown) table, one row per model, then the verdicts against the seed noise.
    `full`: every split × AUROC, macro-F1 and accuracy to 4 decimals. With `reports_dir`, a column of each
    fusion head's parameter count."""
    columns, digits = (ALL_COLUMNS, 4) if full else (COLUMNS, 3)
    header = ["model", "kind"] + [f"{s} {NAMES[k]}" for s, k in columns] + (["head params"] if reports_dir else [])
    rows = []
    for name, r in sorted(result["models"].items(), key=lambda item: (item[1]["kind"] != "expert", item[0])):
        mark = " *" if name in (result["best_expert"], result["best_fusion"]) else ""
        rows.append([name + mark, r["kind"]] + [cell(r.get(s), k, digits) for s, k in columns]
                    + ([head_parameters(reports_dir, name)] if reports_dir else []))
        if "ensemble" in r:
            ensemble = r["ensemble"]
            rows.append([f"{name} ensemble", "ensemble"]
                        + [cell(ensemble.get(s), k, digits) for s, k in columns] + ([""] if reports_dir else []))
    chosen = result.get("selected_on", "val AUROC").split(" (")[0]
    best = f"best fusion {result['best_fusion']} vs best expert {result['best_expert']} (chosen on {chosen})"
    footer = ([verdict(f"deployed: {best}, seed ensembles", result["deployed_minus_best_expert"])]
              if "deployed_minus_best_expert" in result else [])
    footer.append(verdict(f"{best}, per seed", result["fusion_minus_best_expert"]))
    for split, b in result.get("paired_bootstrap_test", {}).items():
        footer.append(f"paired bootstrap over memes, seed ensembles, {split}: AUROC gain {b['auroc_gain']:+.3f}, "
                      f"95 % interval [{b['ci95'][0]:+.3f}, {b['ci95'][1]:+.3f}]")
    footer += [verdict(f"{result['best_fusion']} vs {n}", v) for n, v in result["best_fusion_minus_other_fusions"].items()]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n\n" + "\n".join(f"- {f}" for f in footer)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))] +
                     [fmt.format(*r) for r in rows] + footer)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.studies.comparison_table", description=__doc__)
    parser.add_argument("--comparison", default="metrics/comparison.json", help="output of the compare stage")
    parser.add_argument("--unfamiliar", default="metrics/unfamiliar.json",
                        help="false-positive rates on unfamiliar benign memes (printed when the file exists)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--full", action="store_true", help="every split × AUROC, macro-F1, accuracy, 4 decimals")
    parser.add_argument("--reports-dir", default="reports", help="where reports/<name>.json give each fusion head's "
                                                                 "parameter count ('' to leave the column out)")
    args = parser.parse_args()
    if not Path(args.comparison).is_file():
        raise PipelineError(f"{args.comparison} not found; run `dvc repro` first")
    reports = Path(args.reports_dir) if args.reports_dir else None
    print(format_table(read_json(args.comparison), markdown=args.markdown, full=args.full, reports_dir=reports))
    if Path(args.unfamiliar).is_file():
        found = read_json(args.unfamiliar)
        rates = ", ".join(f"{m} {r['fpr']:.1%}" for m, r in found["methods"].items())
        print(f"false-positive rate on unfamiliar benign memes (unfamiliar.count in params.yaml): {rates}")


if __name__ == "__main__":
    run_cli(main)
