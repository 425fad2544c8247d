"""Classification metrics and the plot data (ROC, PR, confusion) that DVC renders."""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def classification_metrics(labels: np.ndarray, probs: np.ndarray, positive: int = 1) -> dict:
    """accuracy, macro_f1, auroc, auprc, precision, recall (of the positive class) from class probabilities.

    Args:
        labels: (N,) class ids; probs: (N, C) probabilities.
    """
    labels = np.asarray(labels)
    preds = probs.argmax(axis=1)
    pos_score = probs[:, positive]
    binary = (labels == positive).astype(int)
    both = len(np.unique(binary)) == 2
    out = {
        "accuracy": float(skm.accuracy_score(labels, preds)),
        "macro_f1": float(skm.f1_score(labels, preds, average="macro", zero_division=0)),
        "precision": float(skm.precision_score(binary, preds == positive, zero_division=0)),
        "recall": float(skm.recall_score(binary, preds == positive, zero_division=0)),
        "auroc": float(skm.roc_auc_score(binary, pos_score)) if both else float("nan"),
        "auprc": float(skm.average_precision_score(binary, pos_score)) if both else float("nan"),
        "n": int(len(labels)),
    }
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def roc_points(labels: np.ndarray, scores: np.ndarray, positive: int = 1, max_points: int = 200) -> list[dict]:
    """ROC curve as rows {fpr, tpr, threshold}, thinned to at most max_points."""
    fpr, tpr, thr = skm.roc_curve(np.asarray(labels) == positive, scores)
    keep = _thin(len(fpr), max_points)
    return [{"fpr": round(float(fpr[i]), 5), "tpr": round(float(tpr[i]), 5),
             "threshold": round(float(min(thr[i], 1.0)), 5)} for i in keep]


def pr_points(labels: np.ndarray, scores: np.ndarray, positive: int = 1, max_points: int = 200) -> list[dict]:
    """Precision-recall curve as rows {recall, precision}, thinned to at most max_points."""
    precision, recall, _ = skm.precision_recall_curve(np.asarray(labels) == positive, scores)
    keep = _thin(len(recall), max_points)
    return [{"recall": round(float(recall[i]), 5), "precision": round(float(precision[i]), 5)} for i in keep]


def confusion_rows(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> list[dict]:
    """One row per sample {actual, predicted} with class names: DVC's confusion template input."""
    preds = probs.argmax(axis=1)
    return [{"actual": classes[int(a)], "predicted": classes[int(p)]} for a, p in zip(labels, preds)]


def _thin(n: int, max_points: int) -> list[int]:
    if n <= max_points:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max_points).round().astype(int).tolist()))
