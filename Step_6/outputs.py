"""What the evaluate stage writes: quality figures, the full report, run facts, the calibration file that predict
reads, and the reliability diagrams as DVC plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.files import file_sha256, write_json
from Step_6.config import EvaluatePaths


def write_outputs(report: dict, paths: EvaluatePaths) -> None:
    """Quality to --metrics, run facts (timings, cache counts) to --run-report, the rest (deterministic for the
    same inputs, so the report stage reruns only when a figure changed) to --report."""
    run = report.pop("run")
    write_json(Path(paths.metrics), quality_only(report))
    write_json(Path(paths.report), report)
    write_json(Path(paths.run_report), run)
    write_json(Path(paths.calibration), calibration_file(report, paths))
    plots = Path(paths.plots)
    for name, per_split in report["reliability"].items():
        for when in ("before", "after"):
            write_json(plots / f"reliability_{when}" / f"{name}.json",
                       [{"confidence": r["confidence"], "accuracy": r["accuracy"]} for r in per_split["test_seen"][when]])


def quality_only(report: dict) -> dict:
    """The figures that go to metrics/evaluation.json (no intervals, thresholds, counts or lists)."""
    calibration = {name: {s: {f"{k}_{when}": v for when in ("before", "after") for k, v in c["splits"][s][when].items()}
                          for s in c["splits"]} for name, c in report["calibration"].items()}
    points = {name: {op: {s: {k: p[s][k] for k in ("precision", "recall", "flag_rate")} for s in report["splits"]}
                     for op, p in ops.items()} for name, ops in report["operating_points"].items()}
    paired = {pair: {s: {"auroc_diff": r["diff"], "auroc_diff_low": r["ci95"][0], "auroc_diff_high": r["ci95"][1]}
                     for s, r in per.items()} for pair, per in report["paired"].items()}
    robustness = {name: {c: {s: row for s, row in per.items() if row is not None} for c, per in conds.items()}
                  for name, conds in report["robustness"].items()}
    return finite({"calibration": calibration, "operating_points": points, "paired": paired, "robustness": robustness,
                   "robustness_mean_auroc_drop": report["robustness_summary"]["mean_auroc_drop"]})


def calibration_file(report: dict, paths: EvaluatePaths) -> dict:
    """What predict needs: per model the temperature (and bias), the operating points' thresholds, and the
    sha256 of the weights they were fitted for, so a retrained model never meets a stale calibration."""
    return {"positive": report["positive"], "classes": report["classes"], "models": {
        name: {"model_sha256": file_sha256(weights) if (weights := model_file(name, paths)).is_file() else None,
               "temperature": c["temperature"], "bias": c["bias"],
               "operating_points": {op: {"threshold": p["threshold"], "reached_on_val": p["reached_on_val"]}
                                    for op, p in report["operating_points"][name].items()}}
        for name, c in report["calibration"].items()}}


def model_file(name: str, paths: EvaluatePaths) -> Path:
    """The weights file of a model by its comparison name (text_expert, fusion_gated, ...)."""
    if name.startswith("fusion_"):
        return Path(paths.fusion_models) / name.removeprefix("fusion_") / "model.safetensors"
    return Path(paths.experts) / name / "model.safetensors"


def finite(node):
    """NaN / inf become None so the JSON is valid and DVC reads it."""
    if isinstance(node, dict):
        return {k: finite(v) for k, v in node.items()}
    if isinstance(node, list):
        return [finite(v) for v in node]
    if isinstance(node, float) and not np.isfinite(node):
        return None
    return node
