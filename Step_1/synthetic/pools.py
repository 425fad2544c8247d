"""Seen and unseen material: the caption frames, group names and image families held out for test_unseen."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from Step_1.synthetic.captions import FRAMES, GROUPS, INTENTS, Frame
from Step_1.synthetic.scenes import CONTENTS, FAMILIES


@dataclass(frozen=True)
class Pools:
    """Seen (index 0) and unseen (index 1) caption frames per intent, group names, image families per content."""

    frames: dict[str, tuple[tuple[Frame, ...], tuple[Frame, ...]]]
    groups: tuple[tuple[str, ...], tuple[str, ...]]
    families: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


def _split(items: tuple, fraction: float, rng: np.random.Generator) -> tuple[tuple, tuple]:
    n = len(items)
    k = 0 if fraction == 0 else min(n - 1, max(1, round(fraction * n)))
    held = set(rng.permutation(n)[:k].tolist())
    return tuple(x for i, x in enumerate(items) if i not in held), tuple(x for i, x in enumerate(items) if i in held)


@functools.lru_cache(maxsize=16)
def make_pools(seed: int, unseen_fraction: float) -> Pools:
    """Split every frame list, the group names and every family list into seen and unseen, seeded."""
    rng = np.random.default_rng([seed, 0x5EE4])
    frames = {intent: _split(FRAMES[intent], unseen_fraction, rng) for intent in INTENTS}
    groups = _split(GROUPS, unseen_fraction, rng)
    families = {content: _split(FAMILIES[content], unseen_fraction, rng) for content in CONTENTS}
    return Pools(frames, groups, families)
