"""Assemble synthetic memes: content × intent → label, rendered image, metadata row.

Label rule (as in the Hateful Memes benchmark, with benign confounders):
hateful if the caption is explicitly hateful, or the image shows the hate emblem,
or a mocking caption sits on an image of people. The same mocking caption over a
landscape, or the same people under a neutral caption, is benign.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np

from core.params import check
from Step_1.synthetic.captions import INTENTS, make_caption, split_top_bottom
from Step_1.synthetic.render import draw_caption
from Step_1.synthetic.scenes import CONTENTS, make_background

NUMERIC_FIELDS = ("account_age_days", "followers", "prior_reports", "hour_posted", "hashtags")
CATEGORICAL_FIELDS = ("platform", "verified", "region")
PLATFORMS = ("forum", "microblog", "imageboard", "chat")
REGIONS = ("north", "south", "east", "west", "central", "islands")


@dataclass
class SyntheticOptions:
    """Options of a `synthetic` source (params.yaml: prepare.sources[*].options)."""

    count: int = 3000
    seed: int = 13
    image_size: int = 320
    jpeg_quality: int = 90
    missing_rate: float = 0.08
    content_probs: dict[str, float] = field(default_factory=lambda: {
        "person": 0.40, "symbol": 0.08, "animal": 0.11, "food": 0.09,
        "vehicle": 0.09, "landscape": 0.13, "object": 0.10})
    intent_probs: dict[str, float] = field(default_factory=lambda: {
        "neutral": 0.45, "mocking": 0.42, "explicit": 0.13})

    def __post_init__(self) -> None:
        check(self.count >= 1, f"count must be >= 1, got {self.count}")
        check(64 <= self.image_size <= 2048, f"image_size must be in [64, 2048], got {self.image_size}")
        check(1 <= self.jpeg_quality <= 100, f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        check(0.0 <= self.missing_rate < 1.0, f"missing_rate must be in [0, 1), got {self.missing_rate}")
        for name, probs, allowed in (("content_probs", self.content_probs, CONTENTS),
                                     ("intent_probs", self.intent_probs, INTENTS)):
            check(set(probs) == set(allowed), f"{name} needs exactly the keys {list(allowed)}")
            check(all(p >= 0 for p in probs.values()), f"{name} must be non-negative")
            check(math.isclose(sum(probs.values()), 1.0, abs_tol=1e-6), f"{name} must sum to 1")


def is_hateful(content: str, intent: str) -> bool:
    """The label rule: explicit caption, hate emblem, or mocking caption over people."""
    return intent == "explicit" or content == "symbol" or (intent == "mocking" and content == "person")


def _choice(rng: np.random.Generator, probs: dict[str, float], order: tuple[str, ...]) -> str:
    return order[rng.choice(len(order), p=[probs[k] for k in order])]


def make_tabular(hateful: bool, missing_rate: float, rng: np.random.Generator) -> dict:
    """Account and post metadata with a weak, real link to the label and some missing values."""
    h = 1.0 if hateful else 0.0
    row = {
        "account_age_days": round(float(rng.lognormal(6.3 - 0.3 * h, 1.0)), 1),
        "followers": int(rng.lognormal(5.0, 1.5)),
        "prior_reports": int(rng.poisson(0.8 + 0.45 * h)),
        "hour_posted": int((rng.normal(15 + 2 * h, 5.0)) % 24),
        "hashtags": int(rng.poisson(2.0)),
        "platform": PLATFORMS[rng.integers(len(PLATFORMS))],
        "verified": "yes" if rng.random() < 0.22 - 0.07 * h else "no",
        "region": REGIONS[rng.integers(len(REGIONS))],
    }
    for key in row:
        if rng.random() < missing_rate:
            row[key] = None
    return row


def make_meme(index: int, opts: SyntheticOptions) -> tuple[dict, bytes]:
    """Meme number `index`: its record fields and JPEG bytes, fully determined by (seed, index)."""
    rng = np.random.default_rng([opts.seed, index])
    content = _choice(rng, opts.content_probs, CONTENTS)
    intent = _choice(rng, opts.intent_probs, INTENTS)
    caption = make_caption(intent, rng)
    top, bottom = split_top_bottom(caption, rng)
    image = draw_caption(make_background(content, opts.image_size, rng), top, bottom, rng)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=opts.jpeg_quality)
    hateful = is_hateful(content, intent)
    record = {
        "text": " ".join(part for part in (top, bottom) if part).upper(),
        "label": "hateful" if hateful else "benign",
        "tabular": make_tabular(hateful, opts.missing_rate, rng),
        "meta": {"content": content, "intent": intent},
    }
    return record, buffer.getvalue()
