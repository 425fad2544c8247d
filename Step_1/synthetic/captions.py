"""Meme captions from a compositional grammar: intent → frame (a template skeleton with paraphrases) → slots.

The intents, frames and slot words live in Step_1.synthetic.caption_frames (re-exported here). Framing
wrappers ("honestly ...", "... change my mind"), sarcasm markers and misspellings (character swaps,
drops, doubles, vowel changes) are added on top.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from Step_1.synthetic.caption_frames import (
    FRAMES,
    GROUPS,
    INTENTS,  # noqa: F401 - re-exported for callers of this module
    PREFIXES,
    SARCASM,
    SLOTS,
    SUFFIXES,
    Frame,
)

_SLOT = re.compile(r"\{(\w+)\}")
MAX_CHARS = 64  # longer captions shrink the font below what OCR reads well


@dataclass(frozen=True)
class Caption:
    text: str  # lower case, as written (rendering upper-cases it)
    intent: str
    frame: str
    quoted_frame: str | None
    group: str | None
    sarcasm: bool
    typos: int


def _pick(seq, rng: np.random.Generator):
    return seq[int(rng.integers(len(seq)))]


def _fill(pattern: str, rng: np.random.Generator, group: str | None, quote: str | None) -> str:
    def slot(match: re.Match) -> str:
        name = match.group(1)
        if name == "group":
            return group
        if name == "quote":
            return quote
        return _pick(SLOTS[name], rng)
    return _SLOT.sub(slot, pattern)


def misspell(word: str, rng: np.random.Generator) -> str:
    """One typo that keeps the first letter: swap two neighbours, drop or double a letter, or change a vowel."""
    if len(word) < 4 or not word.isalpha():
        return word
    kind = int(rng.integers(4))
    i = int(rng.integers(1, len(word) - 1))
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    vowels = [k for k, c in enumerate(word) if c in "aeiou" and k > 0]
    if not vowels:
        return word[:i] + word[i + 1:]
    k = vowels[int(rng.integers(len(vowels)))]
    return word[:k] + _pick([v for v in "aeiou" if v != word[k]], rng) + word[k + 1:]


def make_caption(intent: str, rng: np.random.Generator, frames: tuple[Frame, ...] | None = None,
                 groups: tuple[str, ...] | None = None, quote_frames: tuple[Frame, ...] | None = None,
                 sarcasm_rate: float = 0.15, framing_rate: float = 0.45, typo_rate: float = 0.05) -> Caption:
    """A lower-case caption of `intent`.

    Args:
        frames: the frames to draw from (default: all of the intent's frames; pass a seen or unseen pool).
        groups: the group names to draw from (default: all).
        quote_frames: explicit frames a condemning caption may quote (default: all explicit frames).
        sarcasm_rate: chance of a sarcasm marker on neutral, group_neutral and mocking captions
            (borderline frames are sarcastic by construction).
        framing_rate: chance of a framing prefix or suffix ("honestly ...", "... change my mind").
        typo_rate: chance that a word of four or more letters carries a typo.
    """
    frames = frames if frames is not None else FRAMES[intent]
    groups = groups if groups is not None else GROUPS
    frame = _pick(frames, rng)
    if frame.intent != intent:
        raise ValueError(f"frame {frame.name} is not of intent {intent!r}")
    pattern = _pick(frame.patterns, rng)
    group = _pick(groups, rng) if "{group}" in pattern or "{quote}" in pattern else None
    quote, quoted = None, None
    if "{quote}" in pattern:
        quoted = _pick(quote_frames if quote_frames is not None else FRAMES["explicit"], rng)
        for attempt in range(3):  # a long quote makes an unreadably small caption: prefer a short one
            inner = min(quoted.patterns, key=len) if attempt == 2 else _pick(quoted.patterns, rng)
            quote = _fill(inner, rng, group, None).rstrip("?")
            if len(pattern) + len(quote) <= MAX_CHARS + 14:
                break
    text = _fill(pattern, rng, group, quote)
    sarcasm = intent == "borderline" or (frame.name == "counter.sarcastic")
    if intent in ("neutral", "group_neutral", "mocking") and rng.random() < sarcasm_rate:
        text = f"{_pick(SARCASM, rng)} {text}"
        sarcasm = True
    if rng.random() < framing_rate:
        wrapped = f"{_pick(PREFIXES, rng)} {text}" if rng.random() < 0.5 else f"{text} {_pick(SUFFIXES, rng)}"
        if len(wrapped) <= MAX_CHARS:
            text = wrapped
    words = text.split(" ")
    typos = 0
    for k, word in enumerate(words):
        if rng.random() < typo_rate:
            new = misspell(word, rng)
            typos += new != word
            words[k] = new
    return Caption(" ".join(words), intent, frame.name, quoted.name if quoted else None, group, sarcasm, typos)


def split_top_bottom(caption: str, rng: np.random.Generator) -> tuple[str, str]:
    """Place the caption top only, bottom only, or split across both at a word boundary."""
    words = caption.split()
    layout = rng.choice(["top", "bottom", "both"], p=[0.3, 0.2, 0.5])
    if layout == "both" and len(words) >= 4:
        cut = int(rng.integers(2, len(words) - 1))
        return " ".join(words[:cut]), " ".join(words[cut:])
    if layout == "bottom":
        return "", caption
    return caption, ""
