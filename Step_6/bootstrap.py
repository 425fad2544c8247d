"""Bootstrap 95 % intervals, vectorised over resamples: rates at a threshold, AUROC, and paired differences."""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def resamples(n: int, count: int, seed: int) -> np.ndarray:
    """(count, n) row indices drawn with replacement; the same seed gives the same resamples."""
    return np.random.default_rng(seed).integers(0, n, size=(count, n))


def interval(values: np.ndarray) -> list[float]:
    """The 2.5 and 97.5 percentiles of finite values (NaN-free), rounded."""
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan"), float("nan")]
    return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])]


def auroc_rows(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row (Mann-Whitney with average ranks for ties); NaN where a row has one class only.

    Args:
        y: (B, n) 0/1 labels; scores: (B, n) scores of the positive class.
    """
    ranks = rankdata(scores, axis=1)
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * y).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def rates_rows(y: np.ndarray, flagged: np.ndarray) -> dict[str, np.ndarray]:
    """Per row: precision (NaN when nothing is flagged), recall and flag rate of the flagged items, and the
    binary macro-F1.

    Args:
        y: (B, n) 0/1 labels; flagged: (B, n) bool decisions.
    """
    tp = (flagged & (y == 1)).sum(axis=1)
    fp = (flagged & (y == 0)).sum(axis=1)
    fn = (~flagged & (y == 1)).sum(axis=1)
    tn = (~flagged & (y == 0)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)  # nothing flagged: undefined
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1_pos = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        f1_neg = np.where(2 * tn + fn + fp > 0, 2 * tn / (2 * tn + fn + fp), 0.0)
    return {"precision": precision, "recall": recall, "flag_rate": flagged.mean(axis=1),
            "macro_f1": (f1_pos + f1_neg) / 2}


def with_intervals(point: dict[str, float], rows: dict[str, np.ndarray]) -> dict:
    """{name: value, name_ci95: [lo, hi]} for every measure."""
    out = {}
    for name, value in point.items():
        out[name] = round(float(value), 4) if np.isfinite(value) else None
        out[f"{name}_ci95"] = interval(rows[name])
    return out


def rates_with_intervals(y: np.ndarray, scores: np.ndarray, threshold: float, count: int, seed: int) -> dict:
    """Precision, recall, flag rate and macro-F1 of `scores >= threshold`, each with a bootstrap interval."""
    flagged = scores >= threshold
    point = {k: float(v[0]) for k, v in rates_rows(y[None], flagged[None]).items()}
    idx = resamples(len(y), count, seed)
    return with_intervals(point, rates_rows(y[idx], flagged[idx]))


def auroc_with_interval(y: np.ndarray, scores: np.ndarray, count: int, seed: int) -> dict:
    point = float(auroc_rows(y[None], scores[None])[0])
    idx = resamples(len(y), count, seed)
    return {"auroc": round(point, 4), "auroc_ci95": interval(auroc_rows(y[idx], scores[idx]))}


def paired_auroc_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray, count: int, seed: int) -> dict:
    """AUROC(a) - AUROC(b) on the same resamples: the difference, its interval and the share of resamples
    in which a is not better (a one-sided bootstrap p-value)."""
    idx = resamples(len(y), count, seed)
    diffs = auroc_rows(y[idx], a[idx]) - auroc_rows(y[idx], b[idx])
    diffs = diffs[np.isfinite(diffs)]
    point = float(auroc_rows(y[None], a[None])[0] - auroc_rows(y[None], b[None])[0])
    return {"diff": round(point, 4), "ci95": interval(diffs),
            "share_not_better": round(float((diffs <= 0).mean()), 4) if len(diffs) else float("nan")}
