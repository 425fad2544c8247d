"""Stage `compare`: every expert and fusion method side by side → metrics/comparison.json.

The best expert and the best fusion are chosen on validation macro-F1 (never on test), and
the test difference between them is reported.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import PipelineError, run_cli
from core.files import read_json, write_json

KEYS = ("macro_f1", "auroc", "accuracy")


def compare(metrics_dir: Path, experts: list[str], methods: list[str]) -> dict:
    models = {}
    for kind, names in (("expert", [f"{m}_expert" for m in experts]), ("fusion", [f"fusion_{m}" for m in methods])):
        for name in names:
            path = metrics_dir / f"{name}.json"
            if not path.is_file():
                raise PipelineError(f"{path} not found; run its stage first (dvc repro)")
            report = read_json(path)
            models[name] = {"kind": kind, **{s: {k: report[s][k] for k in KEYS} for s in ("val", "test")}}

    def best(kind: str) -> str:
        return max((n for n, r in models.items() if r["kind"] == kind), key=lambda n: models[n]["val"]["macro_f1"])

    best_expert, best_fusion = best("expert"), best("fusion")
    diff = {f"test_{k}": round(models[best_fusion]["test"][k] - models[best_expert]["test"][k], 4) for k in KEYS}
    return {"models": models, "best_expert": best_expert, "best_fusion": best_fusion,
            "fusion_minus_best_expert": diff, "selected_on": "val macro_f1"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics-dir", default="metrics")
    parser.add_argument("--experts", nargs="+", default=["text", "vision", "tabular"])
    parser.add_argument("--methods", nargs="+", default=["concat", "gated", "transformer", "late"])
    parser.add_argument("--out", default="metrics/comparison.json")
    args = parser.parse_args()
    result = compare(Path(args.metrics_dir), args.experts, args.methods)
    write_json(args.out, result)
    from Step_5.report import format_table

    print(format_table(result))


if __name__ == "__main__":
    run_cli(main)
