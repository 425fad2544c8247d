"""Write a model's evaluation: metrics/<name>.json and ROC / PR / confusion plot data for DVC."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.files import write_json
from Step_4.metrics import classification_metrics, confusion_rows, pr_points, roc_points


def labelled_probs(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of the labelled rows of an embedding/prediction dict with 'labels', 'logits'."""
    keep = data["labels"] >= 0
    probs = torch.softmax(data["logits"][keep].float(), dim=-1).numpy()
    return data["labels"][keep].numpy(), probs


def evaluate(splits: dict[str, tuple[np.ndarray, np.ndarray]], positive: int) -> dict:
    return {split: classification_metrics(labels, probs, positive) for split, (labels, probs) in splits.items()}


def write_report(name: str, splits: dict[str, tuple[np.ndarray, np.ndarray]], *, classes: list[str], positive: int,
                 metrics_dir: Path, extra: dict | None = None, plot_split: str = "test") -> dict:
    """metrics_dir/<name>.json plus metrics_dir/plots/<name>/{roc,pr,confusion}.json for `plot_split`."""
    report = {**evaluate(splits, positive), **(extra or {})}
    write_json(metrics_dir / f"{name}.json", report)
    labels, probs = splits[plot_split]
    plots = metrics_dir / "plots" / name
    write_json(plots / "roc.json", roc_points(labels, probs[:, positive], positive))
    write_json(plots / "pr.json", pr_points(labels, probs[:, positive], positive))
    write_json(plots / "confusion.json", confusion_rows(labels, probs, classes))
    return report
