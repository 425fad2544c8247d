"""Unfamiliar benign memes: everyday notices in another font over backgrounds the generator never draws.

Used to check that a trained model does not flag benign memes just because they look new: the wording
is not from the caption grammar, the font is Archivo Black (sentence case) instead of upper-case
Anton, and the backgrounds (lined paper, polka dots, diagonal stripes, checks, graph paper) appear
nowhere in Step_1.synthetic.scenes. Every such meme is benign.
"""
from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageDraw

from Step_1.synthetic.captions import split_top_bottom
from Step_1.synthetic.metadata import make_tabular
from Step_1.synthetic.render import draw_caption

BACKGROUNDS = ("lined", "dots", "diagonal", "checks", "graph")
SUBJECTS = ("the library", "our bakery", "the community garden", "the swimming pool", "my grandmother",
            "the museum", "the farmers market", "the cinema", "the school choir", "the hiking club",
            "the corner shop", "our book club", "the pottery class", "the youth orchestra", "the science fair",
            "the dog shelter", "the chess club", "the flower show", "my little brother", "the night bus")
PREDICATES = ("opens at nine on saturdays", "is looking for volunteers", "has fresh bread every morning",
              "is closed for repairs until friday", "won a prize this spring", "needs more chairs",
              "starts again in september", "is collecting old blankets", "moved to a bigger room",
              "has a new timetable", "is selling tickets at the door", "turned ten this week",
              "meets every second tuesday", "is giving free lessons", "found a lost set of keys")
NOTES = ("remember to water the tomatoes", "lost a blue scarf near the fountain", "free tea after the meeting",
         "happy birthday to my favourite aunt", "the rain finally stopped", "please return borrowed ladders",
         "kite festival on the hill next month", "thank you to everyone who helped paint the fence",
         "our strawberries are ripe", "recycling goes out on wednesdays", "bring a jumper it gets chilly",
         "the duck pond froze over", "quiz night moved to thursday", "congratulations to the new graduates")


@functools.cache
def font_path() -> str:
    """Archivo Black, shipped by the `fontpkg-archivo-black` package (a wide grotesque, unlike condensed Anton)."""
    import fontpkg

    return str(fontpkg.path("Archivo Black"))


def unfamiliar_caption(rng: np.random.Generator) -> str:
    """An everyday benign notice in sentence case (wording not used by the caption grammar)."""
    if rng.random() < 0.55:
        text = f"{SUBJECTS[int(rng.integers(len(SUBJECTS)))]} {PREDICATES[int(rng.integers(len(PREDICATES)))]}"
    else:
        text = NOTES[int(rng.integers(len(NOTES)))]
    return text[0].upper() + text[1:]


def _pastel(rng: np.random.Generator) -> tuple[int, int, int]:
    """A light colour outside the OCR's white-glyph range (its channels spread by at least 50)."""
    c = [int(rng.integers(150, 200)), int(rng.integers(200, 250)), int(rng.integers(200, 250))]
    order = rng.permutation(3)
    return tuple(c[i] for i in order)


def draw_background(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A plain patterned card: lined paper, polka dots, diagonal stripes, checks or graph paper."""
    base, ink = _pastel(rng), tuple(int(v) for v in rng.integers(60, 160, size=3))
    image = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(image)
    step = int(size * rng.uniform(0.06, 0.1))
    if kind == "lined":
        for y in range(step, size, step):
            draw.line((0, y, size, y), fill=(110, 150, 210), width=2)
        draw.line((step * 1.5, 0, step * 1.5, size), fill=(210, 90, 90), width=2)
    elif kind == "dots":
        r = step * 0.25
        for i, y in enumerate(range(0, size + step, step)):
            for x in range((i % 2) * step // 2, size + step, step):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    elif kind == "diagonal":
        for x in range(-size, size, step):
            draw.line((x, size, x + size, 0), fill=ink, width=max(2, step // 3))
    elif kind == "checks":
        other = _pastel(rng)
        for i, y in enumerate(range(0, size, step)):
            for j, x in enumerate(range(0, size, step)):
                if (i + j) % 2:
                    draw.rectangle((x, y, x + step, y + step), fill=other)
    elif kind == "graph":
        for v in range(0, size, step // 2):
            draw.line((v, 0, v, size), fill=ink, width=1)
            draw.line((0, v, size, v), fill=ink, width=1)
    else:
        raise ValueError(f"unknown background {kind!r}")
    return image


def make_unfamiliar_benign(index: int, seed: int = 13, size: int = 320, jpeg_quality: int = 90,
                           missing_rate: float = 0.08) -> tuple[dict, bytes]:
    """Unfamiliar benign meme number `index`: (record, JPEG bytes), fully determined by (seed, index).

    The record has the generator's layout (text, label, split, tabular, meta); the text is the caption
    as drawn, the label always "benign", the metadata that of a non-hostile account.
    """
    rng = np.random.default_rng([seed, index, 0xFA11])
    caption = unfamiliar_caption(rng)
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    top, bottom = split_top_bottom(caption, rng)
    path = font_path()
    image = draw_caption(draw_background(kind, size, rng), top, bottom, rng, font_path=path, upper=False,
                         size_range=(0.07, 0.1))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=jpeg_quality)
    record = {
        "text": " ".join(part for part in (top, bottom) if part),
        "label": "benign",
        "split": None,
        "tabular": make_tabular(False, missing_rate, 0.0, rng),
        "meta": {"set": "unfamiliar", "background": kind, "font": "Archivo Black",
                 "true_label": "benign"},
    }
    return record, buffer.getvalue()

