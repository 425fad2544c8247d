"""Temperature scaling and the calibration measures: ECE (equal-width and adaptive bins), Brier, NLL."""
from __future__ import annotations

import math

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0, bias: np.ndarray | list | None = None) -> np.ndarray:
    """softmax(logits / temperature + bias)."""
    z = logits / temperature + (0.0 if bias is None else np.asarray(bias, dtype=np.float64))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class."""
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared distance between the probability vector and the one-hot label (summed over classes)."""
    onehot = np.eye(probs.shape[1])[labels]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, low: float = 0.05, high: float = 20.0,
                    groups: list[np.ndarray] | None = None) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T): golden-section search on log T (the NLL is convex in
    1 / T, so unimodal in log T), deterministic and dependency-free. With `groups` (row indices, e.g. one per
    split) it minimises the largest group's NLL instead: the temperature that serves the worst group best (a
    maximum of convex functions is convex, so the search still holds)."""
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2
    parts = [(logits[g], labels[g]) for g in groups] if groups else [(logits, labels)]
    loss = lambda log_t: max(nll(softmax(z, math.exp(log_t)), y) for z, y in parts)  # noqa: E731
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return round(math.exp((a + b) / 2), 4)


def fit_temperature_bias(logits: np.ndarray, labels: np.ndarray) -> tuple[float, list[float]]:
    """T > 0 and a per-class bias b minimising the NLL of softmax(logits / T + b) (L-BFGS in float64 from
    T = 1, b = 0): temperature scaling that can also undo a shift, e.g. from class-weighted training."""
    import torch

    z, y = torch.tensor(logits, dtype=torch.float64), torch.tensor(labels)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t, bias], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp() + bias, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    b = (bias - bias.mean()).detach()  # only differences between classes matter
    return round(float(log_t.detach().exp().clamp(0.05, 20.0)), 4), [round(float(v), 4) for v in b]


def bin_edges(confidence: np.ndarray, bins: int, adaptive: bool) -> np.ndarray:
    """Equal-width edges on [0, 1], or adaptive edges holding (about) the same number of samples each."""
    if not adaptive:
        return np.linspace(0.0, 1.0, bins + 1)
    edges = np.quantile(confidence, np.linspace(0.0, 1.0, bins + 1))
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 15, adaptive: bool = False) -> list[dict]:
    """Per non-empty bin of top-label confidence: mean confidence, accuracy, sample count."""
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(float)
    edges = bin_edges(confidence, bins, adaptive)
    # a sample goes to the bin whose (lower, upper] holds it; the first bin also takes 0
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            rows.append({"bin": b, "confidence": float(confidence[inside].mean()),
                         "accuracy": float(correct[inside].mean()), "count": int(inside.sum())})
    return rows


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15, adaptive: bool = False) -> float:
    """Expected calibration error: the sample-weighted mean |accuracy - confidence| over the bins."""
    rows = reliability(probs, labels, bins, adaptive)
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / max(1, len(labels)))


def calibration_measures(probs: np.ndarray, labels: np.ndarray, bins: int) -> dict:
    return {"ece": round(ece(probs, labels, bins), 4), "ece_adaptive": round(ece(probs, labels, bins, True), 4),
            "brier": round(brier(probs, labels), 4), "nll": round(nll(probs, labels), 4)}
