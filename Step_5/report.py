"""Print metrics/comparison.json as a table (used at the end of `make run`): mean ± std over seeds."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import PipelineError, run_cli
from core.files import read_json

COLUMNS = (("val", "auroc"), ("test_seen", "auroc"), ("test_unseen", "auroc"), ("test_seen", "macro_f1"),
           ("test_unseen", "macro_f1"))


def cell(scores: dict | None, key: str) -> str:
    if not scores or scores.get(key) is None:
        return "n/a"
    return f"{scores[key]:.3f} ± {scores[f'{key}_std']:.3f}"


def verdict(name: str, versus: dict) -> str:
    parts = []
    for split, by_key in versus.items():
        c = by_key["auroc"]
        if c is not None:
            mark = "beyond" if c["beyond_noise"] else "within"
            parts.append(f"{split} AUROC {c['diff']:+.3f} ({mark} seed noise {c['seed_noise']:.3f})")
    return f"{name}: " + "; ".join(parts)


def format_table(result: dict, markdown: bool = False) -> str:
    """A fixed-width (or Markdown) table, one row per model, then the verdicts against the seed noise."""
    header = ["model", "kind"] + [f"{s} {'AUROC' if k == 'auroc' else 'macro-F1'}" for s, k in COLUMNS]
    rows = []
    for name, r in sorted(result["models"].items(), key=lambda item: (item[1]["kind"] != "expert", item[0])):
        mark = " *" if name in (result["best_expert"], result["best_fusion"]) else ""
        rows.append([name + mark, r["kind"]] + [cell(r.get(s), k) for s, k in COLUMNS])
    best = f"best fusion {result['best_fusion']} vs best expert {result['best_expert']} (chosen on val AUROC)"
    footer = [verdict(best, result["fusion_minus_best_expert"])]
    for split, b in result.get("paired_bootstrap_test", {}).items():
        footer.append(f"paired bootstrap, saved models, {split}: AUROC gain {b['auroc_gain']:+.3f}, "
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
    parser = argparse.ArgumentParser(prog="python -m Step_5.report", description=__doc__)
    parser.add_argument("--comparison", default="metrics/comparison.json", help="output of the compare stage")
    parser.add_argument("--unfamiliar", default="metrics/unfamiliar.json",
                        help="false-positive rates on unfamiliar benign memes (printed when the file exists)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    if not Path(args.comparison).is_file():
        raise PipelineError(f"{args.comparison} not found; run `dvc repro` first")
    print(format_table(read_json(args.comparison), markdown=args.markdown))
    if Path(args.unfamiliar).is_file():
        found = read_json(args.unfamiliar)
        rates = ", ".join(f"{m} {r['fpr']:.1%}" for m, r in found["methods"].items())
        print(f"false-positive rate on unfamiliar benign memes (unfamiliar.count in params.yaml): {rates}")


if __name__ == "__main__":
    run_cli(main)
