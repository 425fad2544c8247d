"""Trends of a split (a meme's caption frame or target group) and the few-shot pools drawn from them.

A pool holds up to `size` memes of one trend, at most half of the trend's memes, ordered so that every prefix
(the first k) keeps the trend's label shares within one meme; the memes of no pool are the evaluation set.
"""
from __future__ import annotations

import numpy as np

from Step_3.reader import ShardReader

KINDS = ("frame", "group")  # sample meta keys that name a trend (synthetic data records both)


def trend_values(shards: str, split: str, kind: str, ids: list[str]) -> list[str | None]:
    """Per id (in the given order) the meme's meta.<kind> from the shards; None where a sample has none."""
    found = {}
    for sample in ShardReader(shards).samples(split, decode_images=False):
        value = (sample["meta"].get("meta") or {}).get(kind)
        found[sample["id"]] = str(value) if value not in (None, "") else None
    return [found.get(i) for i in ids]


def stratified_order(rows: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> list[int]:
    """`rows` shuffled within each label, then interleaved so that any prefix holds each label in the share it has
    in `rows` (within one meme): at each step the label furthest below its share comes next."""
    classes = sorted(set(labels.tolist()))
    queues = {c: list(rng.permutation(rows[labels == c])) for c in classes}
    shares = {c: len(q) / len(rows) for c, q in queues.items()}
    taken, order = dict.fromkeys(classes, 0), []
    for step in range(1, len(rows) + 1):
        c = max((c for c in classes if taken[c] < len(queues[c])), key=lambda c: shares[c] * step - taken[c])
        order.append(int(queues[c][taken[c]]))
        taken[c] += 1
    return order


def draw_pools(values: list[str | None], labels: np.ndarray, size: int,
               rng: np.random.Generator) -> tuple[dict[str, list[int]], np.ndarray]:
    """({trend: row indices of its pool, in the order memes join the memory}, the evaluation rows (sorted)).

    Each trend's pool holds min(size, half its memes) memes, label-stratified (stratified_order); rows without a
    trend are never pooled. The evaluation rows are all the others: no pooled meme is ever scored.
    """
    values = np.array([v if v is not None else "" for v in values], dtype=object)
    pools = {}
    for trend in sorted(set(values.tolist()) - {""}):
        rows = np.flatnonzero(values == trend)
        take = min(size, len(rows) // 2)
        if take:
            pools[trend] = stratified_order(rows, labels[rows], rng)[:take]
    pooled = np.zeros(len(values), dtype=bool)
    for rows in pools.values():
        pooled[rows] = True
    return pools, np.flatnonzero(~pooled)


def first_k(pools: dict[str, list[int]], k: int) -> list[int]:
    """The first k memes of every trend's pool."""
    return [r for rows in pools.values() for r in rows[:k]]
