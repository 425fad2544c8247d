"""Print metrics/comparison.json as a table (used at the end of `make run`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import PipelineError, run_cli
from core.files import read_json


def format_table(result: dict, markdown: bool = False) -> str:
    """A fixed-width (or Markdown) table: one row per model, val and test metrics."""
    header = ["model", "kind", "val macro-F1", "val AUROC", "test macro-F1", "test AUROC", "test acc"]
    rows = []
    order = sorted(result["models"].items(), key=lambda item: (item[1]["kind"] != "expert", item[0]))
    for name, r in order:
        mark = " *" if name in (result["best_expert"], result["best_fusion"]) else ""
        rows.append([name + mark, r["kind"], f"{r['val']['macro_f1']:.4f}", f"{r['val']['auroc']:.4f}",
                     f"{r['test']['macro_f1']:.4f}", f"{r['test']['auroc']:.4f}", f"{r['test']['accuracy']:.4f}"])
    d = result["fusion_minus_best_expert"]
    footer = (f"best fusion {result['best_fusion']} vs best expert {result['best_expert']} (chosen on val macro-F1): "
              f"test macro-F1 {d['test_macro_f1']:+.4f}, AUROC {d['test_auroc']:+.4f}")
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + f"\n\n{footer}"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))] +
                     [fmt.format(*r) for r in rows] + [footer])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.report", description=__doc__)
    parser.add_argument("--comparison", default="metrics/comparison.json")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    if not Path(args.comparison).is_file():
        raise PipelineError(f"{args.comparison} not found; run `dvc repro` first")
    print(format_table(read_json(args.comparison), markdown=args.markdown))


if __name__ == "__main__":
    run_cli(main)
