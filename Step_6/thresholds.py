"""Operating points chosen on validation scores: max macro-F1, precision >= target, recall >= target."""
from __future__ import annotations

import numpy as np

from Step_6.bootstrap import rates_rows


def candidate_cuts(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every distinct threshold (flag when score >= t) and the rates each gives on (y, scores)."""
    thresholds = np.unique(scores)[::-1]  # high to low: flags grow
    flagged = scores[None, :] >= thresholds[:, None]  # (T, n)
    return thresholds, rates_rows(np.broadcast_to(y, flagged.shape), flagged)


def max_positive_f1(y: np.ndarray, scores: np.ndarray) -> float:
    """The threshold of highest F1 of the positive class (the hateful memes caught against those wrongly flagged)."""
    thresholds, rates = candidate_cuts(y, scores)
    precision, recall = np.nan_to_num(rates["precision"], nan=0.0), rates["recall"]
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return float(thresholds[int(np.argmax(f1))])


def choose_operating_points(y: np.ndarray, scores: np.ndarray, min_precision: float, min_recall: float) -> dict:
    """{name: {'threshold', 'reached_on_val'}} for max_f1, precision_<p>, recall_<r>.

    precision_<p>: the lowest threshold whose precision is >= p (most recall at that precision);
    recall_<r>: the highest threshold whose recall is >= r (fewest flags at that recall). When no
    threshold reaches the target, the closest one is used and reached_on_val is false.
    """
    thresholds, rates = candidate_cuts(y, scores)
    best_f1 = int(np.argmax(rates["macro_f1"]))
    points = {"max_f1": {"threshold": float(thresholds[best_f1]), "reached_on_val": True}}
    precision = np.nan_to_num(rates["precision"], nan=0.0)
    ok = np.flatnonzero(precision >= min_precision)
    pick = ok[-1] if len(ok) else int(np.argmax(precision))
    points[f"precision_{round(min_precision * 100)}"] = {"threshold": float(thresholds[pick]),
                                                          "reached_on_val": bool(len(ok))}
    ok = np.flatnonzero(rates["recall"] >= min_recall)
    pick = ok[0] if len(ok) else int(np.argmax(rates["recall"]))
    points[f"recall_{round(min_recall * 100)}"] = {"threshold": float(thresholds[pick]), "reached_on_val": bool(len(ok))}
    return points  # thresholds exact: rounding could lift one above a saturated score and flag nothing
