"""Assemble synthetic memes: caption intent × image content (+ a hidden account variable) → label, votes, record.

Label rule (the true label; `label` is the majority of three simulated annotators):

1. Hate emblem in the image (content `emblem`: a ring holding three sharp prongs, in any variant or medium)
   → hateful, unless the caption condemns or counters it (intent `condemning` or `counter`) → benign.
   Look-alike symbols (`emblem_lookalike`: flowers, wheels, four- or five-prong stars, clocks, fans,
   bullseyes, knots) are benign.
2. Explicit attack on a group (intent `explicit`) → hateful, whatever the image. Quoting or reporting
   such an attack in order to condemn it (intent `condemning`), or negating it ("X are NOT ruining Y",
   intent `counter`) → benign, whatever the image.
3. Mocking or dehumanising caption (intent `mocking`, aimed at whoever is pictured) → hateful over an
   image of real people (content `person`: photographs, drawn figures, portraits, crowds, stick
   figures, a video call); benign over people-like non-people (`lookalike`: statues, mannequins,
   posters of people, dressed animals, snowmen, robots, scarecrows) and over anything else.
4. Borderline sarcasm about a group (intent `borderline`) → hateful when the hidden account intent
   is hostile, benign otherwise. The account intent also shifts the metadata (account age,
   followers, prior reports, hour posted, hashtags, platform, verified), so for these memes the
   tabular fields are the only — weak — tie-breaker.
5. Everything else is benign: everyday captions (`neutral`) and harmless mentions of a group
   (`group_neutral`) over any image, people included.

So the caption alone cannot decide rules 1, 3 and 4, the image alone cannot decide rules 1–5, and the
metadata alone is weak: hostile accounts are only somewhat more common among hateful memes
(`hostile_rates`). Three annotators vote on every meme with their own error rates
(`annotator_error_rates`), raised by `hard_error_boost` on hard memes (counter, condemning,
borderline or sarcastic captions, look-alike images). A share of memes (`unseen_share`) is built
only from held-out caption frames, group names and image families (`unseen_fraction` of each pool)
and carries split `test_unseen`.

Each meme also gets an hourly engagement series (Step_1.synthetic.engagement): a coordinated push is far more
likely from a hostile account, and hateful memes draw somewhat more reports, so the series is a weak clue
alone and another view of the hidden account intent beside the metadata.
"""
from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass, field

import numpy as np

from core.params import check
from Step_1.synthetic.captions import FRAMES, GROUPS, INTENTS, Frame, make_caption, split_top_bottom
from Step_1.synthetic.engagement import make_series
from Step_1.synthetic.render import draw_caption
from Step_1.synthetic.scenes import CONTENTS, FAMILIES, MEDIA, draw_scene, style_of

NUMERIC_FIELDS = ("account_age_days", "followers", "prior_reports", "hour_posted", "hashtags")
CATEGORICAL_FIELDS = ("platform", "verified", "region")
PLATFORMS = ("forum", "microblog", "imageboard", "chat")
REGIONS = ("north", "south", "east", "west", "central", "islands")
LABELS = ("benign", "hateful")
HARD_INTENTS = ("counter", "condemning", "borderline")
HARD_CONTENTS = ("lookalike", "emblem_lookalike")
CONDEMNS = ("condemning", "counter")


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
                     "framing_rate", "typo_rate", "unseen_share", "series_missing_rate", "series_gap_rate",
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


# ---------------------------------------------------------------- the label rule

def is_hateful(content: str, intent: str, hostile: bool = False) -> bool:
    """The label rule of the module docstring: image content × caption intent (× hidden account intent)."""
    if content == "emblem":
        return intent not in CONDEMNS
    if intent == "explicit":
        return True
    if intent == "mocking":
        return content == "person"
    if intent == "borderline":
        return hostile
    return False


def is_hard(content: str, intent: str, sarcasm: bool) -> bool:
    """Memes that draw more annotator disagreement: counter-speech, condemning quotes, borderline or
    sarcastic captions, and people-like or emblem-like images."""
    return intent in HARD_INTENTS or sarcasm or content in HARD_CONTENTS


def annotate(true_hateful: bool, hard: bool, error_rates, boost: float,
             rng: np.random.Generator) -> tuple[list[str], str, float]:
    """Three votes (label strings), the majority label and the agreement with it (2/3 or 1.0)."""
    votes = []
    for rate in error_rates:
        rate = min(0.5, rate * (1.0 + boost)) if hard else rate
        votes.append(LABELS[int(true_hateful != (rng.random() < rate))])
    majority = max(LABELS, key=votes.count)
    return votes, majority, votes.count(majority) / 3


def expected_agreement(error_rates, boost: float, hard_share: float) -> float:
    """Mean agreement implied by the annotator parameters when `hard_share` of memes are hard."""
    def unanimous(rates):
        return float(np.prod([1 - e for e in rates]) + np.prod(rates))
    hard = [min(0.5, e * (1 + boost)) for e in error_rates]
    p = (1 - hard_share) * unanimous(error_rates) + hard_share * unanimous(hard)
    return p + (1 - p) * 2 / 3


# ---------------------------------------------------------------- seen / unseen pools

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


# ---------------------------------------------------------------- one meme

def _choice(rng: np.random.Generator, probs: dict[str, float], order: tuple[str, ...]) -> str:
    weights = np.array([probs.get(k, 0.0) for k in order])
    return order[rng.choice(len(order), p=weights / weights.sum())]


def _content(intent: str, opts: SyntheticOptions, rng: np.random.Generator) -> str:
    if intent != "mocking":
        return _choice(rng, opts.content_probs, CONTENTS)
    u = rng.random()
    if u < opts.mocking_people_share:
        return "person"
    if u < opts.mocking_people_share + opts.mocking_lookalike_share:
        return "lookalike"
    rest = {c: p for c, p in opts.content_probs.items() if c not in ("person", "lookalike")}
    return _choice(rng, rest, CONTENTS)


def _frames_for(intent: str, content: str, frames: tuple[Frame, ...], rng: np.random.Generator) -> tuple[Frame, ...]:
    """Condemning captions about a symbol go with symbol images; quotes with everything else."""
    if intent != "condemning":
        return frames
    about_symbol = tuple(f for f in frames if any("{symbol}" in p for p in f.patterns))
    quoting = tuple(f for f in frames if f not in about_symbol)
    want_symbol = content in ("emblem", "emblem_lookalike") and rng.random() < 0.7
    chosen = about_symbol if want_symbol else quoting
    return chosen or frames


def make_tabular(hostile: bool, missing_rate: float, shift: float, rng: np.random.Generator) -> dict:
    """Account and post metadata, shifted by the hidden account intent, with some missing values."""
    h = shift if hostile else 0.0
    platform_w = np.array([0.3, 0.3, 0.2, 0.2]) + h * np.array([-0.05, -0.05, 0.12, -0.02])
    row = {
        "account_age_days": round(float(rng.lognormal(6.3 - 0.45 * h, 1.0)), 1),
        "followers": int(rng.lognormal(5.0 - 0.3 * h, 1.5)),
        "prior_reports": int(rng.poisson(0.8 + 0.7 * h)),
        "hour_posted": int((rng.normal(15 + 2.5 * h, 5.0)) % 24),
        "hashtags": int(rng.poisson(2.0 + 0.6 * h)),
        "platform": PLATFORMS[rng.choice(4, p=platform_w / platform_w.sum())],
        "verified": "yes" if rng.random() < max(0.02, 0.22 - 0.1 * h) else "no",
        "region": REGIONS[rng.integers(len(REGIONS))],
    }
    for key in row:
        if rng.random() < missing_rate:
            row[key] = None
    return row


def make_record(index: int, opts: SyntheticOptions) -> tuple[dict, dict]:
    """Meme number `index` without its image: (record, what to draw). Cheap; make_meme renders it.

    The record's variables and the image use separate random streams of (seed, index), so records can
    be studied without rendering and a rendering change does not move any label.
    """
    rng = np.random.default_rng([opts.seed, index, 0])
    pools = make_pools(opts.seed, opts.unseen_fraction)
    unseen = bool(rng.random() < opts.unseen_share)
    side = int(unseen)
    intent = _choice(rng, opts.intent_probs, INTENTS)
    content = _content(intent, opts, rng)
    families = pools.families[content][side]
    family = families[int(rng.integers(len(families)))]
    frames = _frames_for(intent, content, pools.frames[intent][side], rng)
    caption = make_caption(intent, rng, frames=frames, groups=pools.groups[side],
                           quote_frames=pools.frames["explicit"][side], sarcasm_rate=opts.sarcasm_rate,
                           framing_rate=opts.framing_rate, typo_rate=opts.typo_rate)
    top, bottom = split_top_bottom(caption.text, rng)
    medium = MEDIA[int(rng.integers(len(MEDIA)))] if content in ("emblem", "emblem_lookalike") else None
    if intent == "borderline":
        hostile = bool(rng.random() < opts.hostile_rates["borderline"])
        hateful = is_hateful(content, intent, hostile)
    else:
        hateful = is_hateful(content, intent)
        hostile = bool(rng.random() < opts.hostile_rates["hateful" if hateful else "benign"])
    hard = is_hard(content, intent, caption.sarcasm)
    votes, label, agreement = annotate(hateful, hard, opts.annotator_error_rates, opts.hard_error_boost, rng)
    record = {
        "text": " ".join(part for part in (top, bottom) if part).upper(),
        "label": label,
        "split": "test_unseen" if unseen else None,
        "tabular": make_tabular(hostile, opts.missing_rate, opts.hostile_shift, rng),
        "meta": {"content": content, "intent": intent, "frame": caption.frame, "quoted_frame": caption.quoted_frame,
                 "group": caption.group, "image_family": f"{content}/{family}", "style": style_of(family, medium),
                 "medium": medium, "filter": None,  # the drawing filter is known once rendered (make_meme)
                 "unseen": unseen, "hostile": hostile, "sarcasm": caption.sarcasm, "typos": caption.typos,
                 "hard": hard, "true_label": LABELS[int(hateful)], "votes": votes, "agreement": agreement},
    }
    return record, {"family": family, "medium": medium, "top": top, "bottom": bottom}


def make_engagement(record: dict, index: int, opts: SyntheticOptions, steps: int) -> np.ndarray | None:
    """Meme number `index`'s hourly engagement series (steps, 5), or None when it has none; records the pattern
    drawn in record['meta']['engagement']. Its own random stream of (seed, index): labels and images stay put."""
    series, pattern = make_series(record, steps, opts, np.random.default_rng([opts.seed, index, 2]))
    record["meta"]["engagement"] = pattern
    return series


def make_meme(index: int, opts: SyntheticOptions) -> tuple[dict, bytes]:
    """Meme number `index`: its record fields and JPEG bytes, fully determined by (seed, index)."""
    record, plan = make_record(index, opts)
    rng = np.random.default_rng([opts.seed, index, 1])
    background, drawn = draw_scene(plan["family"], opts.image_size, rng, opts.photo_filter_rate, plan["medium"])
    image = draw_caption(background, plan["top"], plan["bottom"], rng)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=opts.jpeg_quality)
    record["meta"]["filter"] = drawn["filter"]
    return record, buffer.getvalue()
