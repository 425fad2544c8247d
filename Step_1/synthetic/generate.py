"""Assemble synthetic memes: caption intent × image content (+ a hidden account variable) → label, votes, record.

The label rule and the annotators are in Step_1.synthetic.labels, the held-out material of splits test_unseen and val_unseen in
Step_1.synthetic.pools, the metadata in Step_1.synthetic.metadata, the options in Step_1.synthetic.options.

Each meme also gets an hourly engagement series (Step_1.synthetic.engagement): a coordinated push is far more
likely from a hostile account, and hateful memes draw somewhat more reports, so the series is a weak clue
alone and another view of the hidden account intent beside the metadata.
"""
from __future__ import annotations

import io

import numpy as np

from Step_1.synthetic.captions import INTENTS, Frame, make_caption, split_top_bottom
from Step_1.synthetic.engagement import make_series
from Step_1.synthetic.labels import LABELS, annotate, is_hard, is_hateful
from Step_1.synthetic.metadata import make_tabular
from Step_1.synthetic.options import SyntheticOptions
from Step_1.synthetic.pools import SEEN, TEST_UNSEEN, VAL_UNSEEN, make_pools
from Step_1.synthetic.render import draw_caption
from Step_1.synthetic.scenes import CONTENTS, MEDIA, draw_scene, style_of


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


HELD_OUT_SPLITS = {TEST_UNSEEN: "test_unseen", VAL_UNSEEN: "val_unseen"}


def meme_side(draw: float, opts: SyntheticOptions) -> int:
    """Which material a meme is built from, by one uniform draw: test_unseen's held-out material below
    unseen_share, val_unseen's in the next val_unseen_share, the seen material otherwise."""
    if draw < opts.unseen_share:
        return TEST_UNSEEN
    return VAL_UNSEEN if draw < opts.unseen_share + opts.val_unseen_share else SEEN


def make_record(index: int, opts: SyntheticOptions) -> tuple[dict, dict]:
    """Meme number `index` without its image: (record, what to draw). Cheap; make_meme renders it.

    The record's variables and the image use separate random streams of (seed, index), so records can
    be studied without rendering and a rendering change does not move any label.
    """
    rng = np.random.default_rng([opts.seed, index, 0])
    pools = make_pools(opts.seed, opts.unseen_fraction, opts.val_unseen_fraction)
    side = meme_side(rng.random(), opts)
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
        "split": HELD_OUT_SPLITS.get(side),
        "tabular": make_tabular(hostile, opts.missing_rate, opts.hostile_shift, rng),
        "meta": {"content": content, "intent": intent, "frame": caption.frame, "quoted_frame": caption.quoted_frame,
                 "group": caption.group, "image_family": f"{content}/{family}", "style": style_of(family, medium),
                 "medium": medium, "filter": None,  # the drawing filter is known once rendered (make_meme)
                 "unseen": side != SEEN, "hostile": hostile, "sarcasm": caption.sarcasm, "typos": caption.typos,
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
