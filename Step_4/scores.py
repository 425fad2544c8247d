"""A model's evaluation over seed repeats: metrics/<name>.json (quality only), reports/<name>.json (how the
run went) and ROC / PR / confusion plot data for DVC.

Every evaluated split (val, val_unseen, test_seen, test_unseen) gets the mean of each metric over the seeds and
its standard deviation (`auroc`, `auroc_std`, ...), against the majority (annotator) label and, where the
source knows it, against the true label (`vs_true_label`); `ensemble` holds the metrics of the seeds' averaged
probabilities (the deployed model). Metrics files hold nothing else — no timings,
counts or params — so `dvc metrics diff` and `dvc exp show` show quality.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from core.files import write_json
from Step_3.splits import EVALUATED
from Step_4.metrics import classification_metrics, confusion_rows, pr_points, roc_points

PER_SEED_KEYS = ("auroc", "macro_f1")


def softmax(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.float(), dim=-1).numpy()


def truth_of(data: dict, labels: str = "labels", true_labels: str = "true_labels") -> dict:
    """{split: {'labels', 'true_labels'}} as arrays, from every split's embeddings (or fusion inputs, whose keys
    are 'label' and 'true_label')."""
    return {s: {"labels": d[labels].numpy(), "true_labels": d[true_labels].numpy()} for s, d in data.items()}


def split_metrics(labels: np.ndarray, probs: np.ndarray, positive: int) -> dict | None:
    """Metrics over the labelled rows (label >= 0); None when there are none."""
    keep = np.asarray(labels) >= 0
    return classification_metrics(np.asarray(labels)[keep], probs[keep], positive) if keep.any() else None


def mean_and_std(per_seed: list[dict]) -> dict:
    """{metric: mean, metric_std: sample std over seeds (0 for one seed), n}; undefined values (NaN) become None."""
    out = {"n": per_seed[0]["n"]}
    for key in per_seed[0]:
        if key == "n":
            continue
        values = np.array([m[key] for m in per_seed], dtype=np.float64)
        defined = not np.isnan(values).any()
        out[key] = round(float(values.mean()), 4) if defined else None
        out[f"{key}_std"] = (round(float(values.std(ddof=1)), 4) if len(values) > 1 else 0.0) if defined else None
    return out


def ensemble_probs(runs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """{split: the seeds' probabilities averaged} (N, C): the seed ensemble, the model that is deployed."""
    return {s: np.mean([run[s] for run in runs], axis=0) for s in runs[0]}


def summarize(runs: list[dict[str, np.ndarray]], truth: dict[str, dict], positive: int, seeds: list[int]) -> dict:
    """Mean ± std over seeds per split, and the seed ensemble's metrics. runs: per seed {split: probs (N, C)};
    truth: {split: {'labels', 'true_labels'}} aligned with the probabilities."""
    report = {"seeds": list(seeds), "per_seed": {}, "vs_true_label": {}, "ensemble": {}}
    averaged = ensemble_probs(runs)
    for split in (s for s in EVALUATED if s in truth):
        for target, key in (("labels", None), ("true_labels", "vs_true_label")):
            per_seed = [split_metrics(truth[split][target], run[split], positive) for run in runs]
            if per_seed[0] is None:
                continue
            (report[key] if key else report)[split] = mean_and_std(per_seed)
            if key is None:
                scores = split_metrics(truth[split][target], averaged[split], positive)
                report["ensemble"][split] = {k: _finite(v) for k, v in scores.items()}
                for seed, scores in zip(seeds, per_seed):
                    report["per_seed"].setdefault(str(seed), {})[split] = {k: _finite(scores[k]) for k in PER_SEED_KEYS}
    return report


def _finite(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value


def headline(report: dict) -> str:
    """One line: AUROC mean ± std per evaluated split."""
    return " | ".join(f"{s} auroc {report[s]['auroc']} ± {report[s]['auroc_std']}" for s in EVALUATED if s in report)


QUALITY = (*EVALUATED, "vs_true_label", "ensemble", "ablation", "modality_removal_test_seen", "depth")


def quality_and_facts(report: dict) -> tuple[dict, dict]:
    """Split a report into quality figures (the metrics file) and facts about the run (the report file):
    sample counts ('n'), seeds, per-seed scores, timings, training summaries, params."""
    counts = {}

    def strip(node, path):
        if not isinstance(node, dict):
            return node
        if "n" in node:
            counts[".".join(path)] = node["n"]
        return {k: strip(v, path + [k]) for k, v in node.items() if k != "n"}

    quality = {k: strip(v, [k]) for k, v in report.items() if k in QUALITY}
    return quality, {**{k: v for k, v in report.items() if k not in QUALITY}, "samples": counts}


def write_report(name: str, report: dict, *, probs: np.ndarray, labels: np.ndarray, classes: list[str], positive: int,
                 metrics_dir: Path, reports_dir: Path) -> dict:
    """metrics_dir/<name>.json (quality), reports_dir/<name>.json (the rest) and
    metrics_dir/plots/<name>/{roc,pr,confusion}.json from one run's test_seen."""
    quality, facts = quality_and_facts(report)
    write_json(metrics_dir / f"{name}.json", quality)
    write_json(reports_dir / f"{name}.json", facts)
    keep = labels >= 0
    labels, probs = labels[keep], probs[keep]
    plots = metrics_dir / "plots" / name
    write_json(plots / "roc.json", roc_points(labels, probs[:, positive], positive))
    write_json(plots / "pr.json", pr_points(labels, probs[:, positive], positive))
    write_json(plots / "confusion.json", confusion_rows(labels, probs, classes))
    return report
