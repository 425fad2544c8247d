"""The options of a `synthetic` source (params.yaml: prepare.sources[*].options), checked when built."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.params import check
from Step_1.synthetic.captions import INTENTS
from Step_1.synthetic.scenes import CONTENTS


@dataclass
class SyntheticOptions:
    """Options of a `synthetic` source (params.yaml: prepare.sources[*].options).

    Args:
        content_probs / intent_probs: how often each image content and caption intent is drawn.
        mocking_people_share / mocking_lookalike_share: for mocking captions, the share drawn over
            real people and over people-like non-people (the rest follows content_probs).
        photo_filter_rate: chance a photograph is redrawn in a drawing style (line, pixel, comic, soft).
        sarcasm_rate / framing_rate / typo_rate: caption noise (see Step_1.synthetic.captions.make_caption).
        hostile_rates: chance the hidden account intent is hostile, for memes whose rule label is
            hateful, benign, and for borderline memes (where it decides the label).
        hostile_shift: how far a hostile account moves the metadata (0: not at all).
        annotator_error_rates: three annotators' chances of flipping the true label.
        hard_error_boost: on hard memes an annotator errs with rate * (1 + boost), at most 0.5.
        unseen_fraction: share of caption frames (per intent), group names and image families (per
            content) held out for test_unseen.
        unseen_share: share of memes built only from held-out material (split test_unseen).
        val_unseen_fraction: share of caption frames, group names and image families held out, from what
            test_unseen leaves, for val_unseen (model selection on unseen material; never test_unseen's).
        val_unseen_share: share of memes built only from val_unseen's held-out material (split val_unseen).
        series_missing_rate / series_gap_rate / hour_missing_rate: memes without an engagement series, series
            that lose a run of 2-12 hours, and single missing hours (Step_1.synthetic.engagement).
        viral_rate: memes (of either class) with an organic burst of engagement.
        coordination_rates: chance of a coordinated push for memes of hostile accounts and of the others.
        hateful_report_ratio / condemning_report_ratio: how many times as often per view hateful memes, and memes
            that quote or counter hate, are reported.
    """

    count: int = 3000
    seed: int = 13
    image_size: int = 320
    jpeg_quality: int = 90
    missing_rate: float = 0.08
    content_probs: dict[str, float] = field(default_factory=lambda: {
        "person": 0.26, "lookalike": 0.14, "emblem": 0.06, "emblem_lookalike": 0.06, "animal": 0.06,
        "food": 0.05, "vehicle": 0.05, "landscape": 0.06, "object": 0.06, "abstract": 0.07, "screenshot": 0.07,
        "text_only": 0.06})
    intent_probs: dict[str, float] = field(default_factory=lambda: {
        "neutral": 0.2, "group_neutral": 0.1, "mocking": 0.32, "explicit": 0.11, "counter": 0.07,
        "condemning": 0.08, "borderline": 0.12})
    mocking_people_share: float = 0.45
    mocking_lookalike_share: float = 0.2
    photo_filter_rate: float = 0.15
    sarcasm_rate: float = 0.15
    framing_rate: float = 0.45
    typo_rate: float = 0.05
    hostile_rates: dict[str, float] = field(default_factory=lambda: {"hateful": 0.45, "benign": 0.2, "borderline": 0.5})
    hostile_shift: float = 1.5
    annotator_error_rates: list[float] = field(default_factory=lambda: [0.04, 0.07, 0.1])
    hard_error_boost: float = 1.5
    unseen_fraction: float = 0.25
    unseen_share: float = 0.15
    val_unseen_fraction: float = 0.0
    val_unseen_share: float = 0.0
    series_missing_rate: float = 0.1
    series_gap_rate: float = 0.3
    hour_missing_rate: float = 0.02
    viral_rate: float = 0.2
    coordination_rates: dict[str, float] = field(default_factory=lambda: {"hostile": 0.6, "other": 0.08})
    hateful_report_ratio: float = 2.0
    condemning_report_ratio: float = 2.0

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
        for name in ("mocking_people_share", "mocking_lookalike_share", "photo_filter_rate", "sarcasm_rate",
                     "framing_rate", "typo_rate", "unseen_share", "val_unseen_share", "series_missing_rate", "series_gap_rate",
                     "hour_missing_rate", "viral_rate"):
            value = getattr(self, name)
            check(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        check(self.mocking_people_share + self.mocking_lookalike_share <= 1.0,
              "mocking_people_share + mocking_lookalike_share must be <= 1")
        others = sum(p for c, p in self.content_probs.items() if c not in ("person", "lookalike"))
        check(others > 0 or self.mocking_people_share + self.mocking_lookalike_share == 1.0,
              "content_probs must give some weight to contents other than person and lookalike")
        check(set(self.hostile_rates) == {"hateful", "benign", "borderline"},
              "hostile_rates needs exactly the keys ['hateful', 'benign', 'borderline']")
        check(all(0.0 <= p <= 1.0 for p in self.hostile_rates.values()), "hostile_rates must be in [0, 1]")
        check(set(self.coordination_rates) == {"hostile", "other"},
              "coordination_rates needs exactly the keys ['hostile', 'other']")
        check(all(0.0 <= p <= 1.0 for p in self.coordination_rates.values()), "coordination_rates must be in [0, 1]")
        check(self.hateful_report_ratio > 0 and self.condemning_report_ratio > 0, "report ratios must be > 0")
        check(self.hostile_shift >= 0, f"hostile_shift must be >= 0, got {self.hostile_shift}")
        check(len(self.annotator_error_rates) == 3, "annotator_error_rates needs three rates (three annotators)")
        check(all(0.0 <= e < 0.5 for e in self.annotator_error_rates), "annotator_error_rates must be in [0, 0.5)")
        check(self.hard_error_boost >= 0, f"hard_error_boost must be >= 0, got {self.hard_error_boost}")
        check(0.0 <= self.unseen_fraction < 1.0, f"unseen_fraction must be in [0, 1), got {self.unseen_fraction}")
        check(self.unseen_share == 0 or self.unseen_fraction > 0, "unseen_share > 0 needs unseen_fraction > 0")
        check(0.0 <= self.val_unseen_fraction < 1.0 - self.unseen_fraction,
              f"val_unseen_fraction must be in [0, 1 - unseen_fraction), got {self.val_unseen_fraction}")
        check(self.val_unseen_share == 0 or self.val_unseen_fraction > 0,
              "val_unseen_share > 0 needs val_unseen_fraction > 0")
        check(self.unseen_share + self.val_unseen_share < 1.0, "unseen_share + val_unseen_share must be < 1")
