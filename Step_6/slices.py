"""Slices of the evaluated memes (source, content, intent, group, annotator agreement, caption length, engagement
pattern) and per-slice quality with bootstrap intervals."""
from __future__ import annotations

import numpy as np

from Step_6.bootstrap import auroc_rows, interval, rates_rows, resamples

FAMILIES = ("source", "content", "intent", "group", "agreement", "caption_length", "engagement")


def length_bin(words: int, edges: list[int]) -> str:
    """'<=6', '7-10', '>10' for edges [6, 10]."""
    lower = 0
    for edge in edges:
        if words <= edge:
            return f"<={edge}" if lower == 0 else f"{lower + 1}-{edge}"
        lower = edge
    return f">{edges[-1]}" if edges else "all"


def slice_values(sample: dict, length_edges: list[int], text: str = "") -> dict[str, str]:
    """The slice value of each family for one shard sample's json and its text (missing facts become 'unknown');
    caption length counts the gold caption's words when the source has one, else the text's."""
    facts = sample.get("meta") or {}
    agreement = facts.get("agreement")
    caption = sample.get("gold_text") or text
    return {
        "source": str(sample.get("source") or "unknown"),
        "content": str(facts.get("content") or "unknown"),
        "intent": str(facts.get("intent") or "unknown"),
        "group": str(facts.get("group") or ("none" if "group" in facts else "unknown")),
        "agreement": "unknown" if agreement is None else ("unanimous" if agreement >= 1.0 else "split"),
        "caption_length": length_bin(len(caption.split()), length_edges),
        # the synthetic source's engagement pattern: none (no series), plain, push, viral, push+viral
        "engagement": str(facts.get("engagement") or "unknown"),
    }


def slice_quality(y: np.ndarray, scores: np.ndarray, threshold: float, values: list[str], count: int,
                  seed: int) -> dict[str, dict]:
    """Per slice value: n, positives, AUROC and macro-F1 at the threshold, each with a 95 % interval."""
    out = {}
    values_arr = np.array(values)
    for value in sorted(set(values)):
        rows = np.flatnonzero(values_arr == value)
        ys, ss = y[rows], scores[rows]
        idx = resamples(len(rows), count, seed)
        flagged = ss >= threshold
        auc = auroc_rows(ys[None], ss[None])[0]
        f1 = rates_rows(ys[None], flagged[None])["macro_f1"][0]
        out[value] = {"n": int(len(rows)), "positives": int(ys.sum()),
                      "auroc": None if not np.isfinite(auc) else round(float(auc), 4),
                      "auroc_ci95": interval(auroc_rows(ys[idx], ss[idx])),
                      "macro_f1": round(float(f1), 4),
                      "macro_f1_ci95": interval(rates_rows(ys[idx], flagged[idx])["macro_f1"])}
    return out


def highlights(per_family: dict[str, dict[str, dict]], min_size: int) -> dict:
    """The smallest slice, and the slice with the lowest AUROC among those with at least min_size memes."""
    rows = [(family, value, row) for family, values in per_family.items() for value, row in values.items()]
    smallest = min(rows, key=lambda r: r[2]["n"])
    scored = [r for r in rows if r[2]["n"] >= min_size and r[2]["auroc"] is not None]
    worst = min(scored, key=lambda r: r[2]["auroc"]) if scored else None
    name = lambda r: {"family": r[0], "value": r[1], "n": r[2]["n"], "auroc": r[2]["auroc"]}  # noqa: E731
    return {"smallest": name(smallest), "worst": name(worst) if worst else None}
