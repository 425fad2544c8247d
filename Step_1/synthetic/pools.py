"""Seen and held-out material: the caption frames, group names and image families held out for test_unseen, and
(from what remains) for val_unseen, so that model selection can look at unseen material that the test never
shows."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from Step_1.synthetic.captions import FRAMES, GROUPS, INTENTS, Frame
from Step_1.synthetic.scenes import CONTENTS, FAMILIES

SEEN, TEST_UNSEEN, VAL_UNSEEN = 0, 1, 2  # the sides of every pool


@dataclass(frozen=True)
class Pools:
    """Per side (SEEN, TEST_UNSEEN, VAL_UNSEEN): caption frames per intent, group names, image families per
    content. The three sides of a pool are disjoint."""

    frames: dict[str, tuple[tuple[Frame, ...], ...]]
    groups: tuple[tuple[str, ...], ...]
    families: dict[str, tuple[tuple[str, ...], ...]]


def _split(items: tuple, fraction: float, rng: np.random.Generator, of: int | None = None) -> tuple[tuple, tuple]:
    """(kept, held): `fraction` of `of` items (default: all of them) held out, at least one, never all."""
    n = len(items)
    k = 0 if fraction == 0 else min(n - 1, max(1, round(fraction * (of or n))))
    held = set(rng.permutation(n)[:k].tolist())
    return tuple(x for i, x in enumerate(items) if i not in held), tuple(x for i, x in enumerate(items) if i in held)


def _three_ways(test: tuple[tuple, tuple], n: int, val_fraction: float, rng: np.random.Generator) -> tuple:
    """(seen, test held-out, val held-out): the val part is taken from what the test left, `val_fraction` of all n."""
    seen, held = test
    seen, val = _split(seen, val_fraction, rng, of=n)
    return seen, held, val


@functools.lru_cache(maxsize=16)
def make_pools(seed: int, unseen_fraction: float, val_unseen_fraction: float = 0.0) -> Pools:
    """Split every frame list, the group names and every family list, seeded: `unseen_fraction` held out for
    test_unseen (drawn first, so the test material does not depend on the val share), then
    `val_unseen_fraction` of each list, from the rest, for val_unseen."""
    rng = np.random.default_rng([seed, 0x5EE4])
    frames = {intent: _split(FRAMES[intent], unseen_fraction, rng) for intent in INTENTS}
    groups = _split(GROUPS, unseen_fraction, rng)
    families = {content: _split(FAMILIES[content], unseen_fraction, rng) for content in CONTENTS}
    val_rng = np.random.default_rng([seed, 0x7A15])
    return Pools({i: _three_ways(frames[i], len(FRAMES[i]), val_unseen_fraction, val_rng) for i in INTENTS},
                 _three_ways(groups, len(GROUPS), val_unseen_fraction, val_rng),
                 {c: _three_ways(families[c], len(FAMILIES[c]), val_unseen_fraction, val_rng) for c in CONTENTS})
