"""The invented hate emblem (a ring holding three sharp prongs), benign look-alikes, and the media they sit on."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from Step_1.synthetic.drawing import (
    crop_jitter,
    disc,
    load_photo,
    paper_colour,
    pins,
    polar,
    poster_frame,
    random_colour,
    wall,
)
from Step_1.synthetic.graphics import draw_feed

MEDIA = ("flag", "graffiti", "sticker", "patch", "paper", "screen", "poster")  # where an emblem or symbol appears


def _prongs(draw, cx, cy, r, n, turn, fill, width=None, sharp=True):
    for k in range(n):
        a = turn + k * 2 * math.pi / n
        tip = polar(cx, cy, r, a)
        side = 0.28 * r if sharp else 0.42 * r
        pts = [tip, polar(cx, cy, side, a + 1.9), (cx, cy), polar(cx, cy, side, a - 1.9)]
        if width:
            draw.line(pts + [tip], fill=fill, width=width)
        elif sharp:
            draw.polygon(pts, fill=fill)
        else:
            mid = polar(cx, cy, r * 0.55, a)
            draw.ellipse((mid[0] - r * 0.28, mid[1] - r * 0.28, mid[0] + r * 0.28, mid[1] + r * 0.28), fill=fill)


def _curved_prongs(draw, cx, cy, r, n, turn, fill, bend):
    for k in range(n):
        a0 = turn + k * 2 * math.pi / n
        left, right = [], []
        for t in np.linspace(0.0, 1.0, 9):
            a = a0 + bend * t
            rad = r * t
            w = 0.22 * r * (1 - t) + 0.02 * r
            x, y = polar(cx, cy, rad, a)
            nx, ny = -math.sin(a), math.cos(a)
            left.append((x + nx * w, y + ny * w))
            right.append((x - nx * w, y - ny * w))
        draw.polygon(left + right[::-1], fill=fill)


EMBLEM_SHAPES = ("classic", "curved", "double_ring", "dotted", "hollow", "sketch")
LOOKALIKE_SHAPES = ("four_star", "five_star", "flower", "wheel", "clock", "fan", "bullseye", "knot")


def _ringed(draw, cx, cy, r, fill, ink, width):
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=ink, width=width)


def _emblem(draw, shape, cx, cy, r, ring, turn, colours, rng):
    """The hate emblem: a ring holding three sharp prongs, in one of EMBLEM_SHAPES."""
    fill, ink = colours
    inner = r * 0.75
    if shape == "hollow":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=ink, width=ring)
        _prongs(draw, cx, cy, inner, 3, turn, ink, width=max(2, ring // 2))
    elif shape == "sketch":
        for _ in range(3):
            j = r * 0.04
            rr = r * rng.uniform(0.96, 1.04)
            ox, oy = rng.normal(0, j, 2)
            draw.ellipse((cx + ox - rr, cy + oy - rr, cx + ox + rr, cy + oy + rr), outline=ink, width=max(2, ring // 3))
            _prongs(draw, cx + ox, cy + oy, inner, 3, turn + rng.normal(0, 0.05), ink, width=max(2, ring // 3))
    else:  # classic, curved, double_ring, dotted
        if shape == "dotted":
            disc(draw, cx, cy, r, fill=fill)
            for k in range(24):
                disc(draw, *polar(cx, cy, r, k * math.pi / 12), ring * 0.7, fill=ink)
        else:
            _ringed(draw, cx, cy, r, fill, ink, ring)
        if shape == "double_ring":
            rr = r * 0.82
            draw.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), outline=ink, width=max(2, ring // 2))
            inner = r * 0.68
        if shape == "curved":
            _curved_prongs(draw, cx, cy, inner, 3, turn, ink, rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0))
        else:
            _prongs(draw, cx, cy, inner, 3, turn, ink)


def _lookalike(draw, shape, cx, cy, r, ring, turn, colours, rng):
    """A benign symbol that resembles the emblem, one of LOOKALIKE_SHAPES."""
    fill, ink = colours
    inner = r * 0.75
    if shape == "bullseye":
        for k, rr in enumerate(np.linspace(r, r * 0.2, int(rng.integers(3, 6)))):
            disc(draw, cx, cy, rr, fill=fill if k % 2 == 0 else ink)
        return
    _ringed(draw, cx, cy, r, fill, ink, max(2, ring // 3) if shape == "fan" else ring)
    if shape in ("four_star", "five_star"):
        _prongs(draw, cx, cy, inner, 4 if shape == "four_star" else 5, turn, ink)
    elif shape == "flower":
        _prongs(draw, cx, cy, inner, int(rng.choice([3, 3, 5, 6])), turn, ink, sharp=False)
        disc(draw, cx, cy, r * 0.15, fill=fill)
    elif shape == "wheel":
        spokes = int(rng.choice([3, 4, 5, 6]))
        for k in range(spokes):
            end = polar(cx, cy, r * 0.9, turn + k * 2 * math.pi / spokes)
            draw.line((cx, cy, *end), fill=ink, width=max(2, ring // 2))
        disc(draw, cx, cy, r * 0.2, fill=ink)
    elif shape == "clock":
        for k in range(12):
            draw.line((*polar(cx, cy, r * 0.72, k * math.pi / 6), *polar(cx, cy, r * 0.82, k * math.pi / 6)), fill=ink,
                      width=max(2, ring // 3))
        draw.line((cx, cy, *polar(cx, cy, r * 0.55, turn)), fill=ink, width=max(2, ring // 2))
        draw.line((cx, cy, *polar(cx, cy, r * 0.7, turn + rng.uniform(1, 5))), fill=ink, width=max(2, ring // 3))
    elif shape == "fan":
        _curved_prongs(draw, cx, cy, inner, int(rng.choice([3, 4])), turn, ink, 1.6)
        disc(draw, cx, cy, r * 0.18, fill=fill, outline=ink, width=2)
    else:  # knot
        for k in range(3):
            x, y = polar(cx, cy, r * 0.3, turn + k * 2 * math.pi / 3)
            disc(draw, x, y, r * 0.38, outline=ink, width=max(2, ring // 2))


def draw_symbol(image: Image.Image, family: str, cx: float, cy: float, r: float, rng: np.random.Generator,
                colours: tuple) -> None:
    """Draw the emblem (family 'emblem:*') or a look-alike ('symbol:*') centred at (cx, cy) with radius r."""
    draw = ImageDraw.Draw(image)
    ring = max(3, int(r * rng.uniform(0.12, 0.2)))
    turn = rng.uniform(0, 2 * math.pi)
    shape = family.split(":")[1]
    if shape in EMBLEM_SHAPES:
        _emblem(draw, shape, cx, cy, r, ring, turn, colours, rng)
    elif shape in LOOKALIKE_SHAPES:
        _lookalike(draw, shape, cx, cy, r, ring, turn, colours, rng)
    else:
        raise ValueError(f"unknown symbol family {family!r}")


SYMBOL_COLOURS = (((200, 20, 30), (15, 15, 15)), ((235, 200, 40), (20, 20, 20)), ((60, 90, 200), (15, 15, 25)),
                  ((40, 140, 70), (10, 20, 10)), ((240, 225, 170), (30, 30, 30)))


def draw_on_medium(family: str, medium: str, size: int, rng: np.random.Generator) -> Image.Image:
    """An emblem or look-alike symbol on a flag, wall, sticker, patch, paper, screen or poster."""
    colours = SYMBOL_COLOURS[0] if rng.random() < 0.5 else SYMBOL_COLOURS[int(rng.integers(len(SYMBOL_COLOURS)))]
    cx, cy, r = rng.uniform(0.38, 0.62) * size, rng.uniform(0.4, 0.6) * size, rng.uniform(0.2, 0.32) * size
    if medium == "flag":
        image = Image.new("RGB", (size, size), random_colour(rng, 0, 200))
        if rng.random() < 0.5:
            ImageDraw.Draw(image).rectangle((0, size * 0.33, size, size * 0.66), fill=random_colour(rng, 0, 200))
        wave = 0.85 + 0.15 * np.sin(np.linspace(0, rng.uniform(6, 14), size))[None, :, None]
        draw_symbol(image, family, cx, cy, r, rng, colours)
        return Image.fromarray((np.asarray(image) * wave).astype(np.uint8))
    if medium == "graffiti":
        image = crop_jitter(load_photo(["brick", "gravel", "grass"][int(rng.integers(3))]), size, rng)
        layer = Image.new("RGB", (size, size))
        mask = Image.new("L", (size, size), 0)
        draw_symbol(layer, family, cx, cy, r, rng, colours)
        draw_symbol(mask, family, cx, cy, r, rng, (255, 255))
        mask = mask.filter(ImageFilter.GaussianBlur(size / 200))
        speckle = (rng.random((size, size)) < 0.85).astype(np.uint8)
        mask = Image.fromarray((np.asarray(mask) * speckle).astype(np.uint8))
        image.paste(layer, (0, 0), mask)
        return image
    if medium == "sticker":
        pool = ("china", "coffee", "gravel", "grass", "moon", "flower", "rocket")
        image = crop_jitter(load_photo(pool[int(rng.integers(len(pool)))]), size, rng)
        draw = ImageDraw.Draw(image)
        r *= 0.75
        disc(draw, cx + 5, cy + 5, r * 1.15, fill=(30, 30, 30))
        disc(draw, cx, cy, r * 1.15, fill=(240, 235, 185))
        draw_symbol(image, family, cx, cy, r, rng, colours)
        return image
    if medium == "patch":
        base = np.array(random_colour(rng, 40, 180), dtype=np.float32)
        texture = base[None, None, :] * (0.85 + 0.15 * rng.random((size, size, 1)))
        image = Image.fromarray(texture.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        disc(draw, cx, cy, r * 1.15, fill=random_colour(rng, 40, 160))
        for k in range(36):
            a = k * math.pi / 18
            draw.line((*polar(cx, cy, r * 1.08, a), *polar(cx, cy, r * 1.08, a + 0.08)), fill=(230, 200, 60), width=2)
        draw_symbol(image, family, cx, cy, r * 0.95, rng, colours)
        return image
    if medium == "paper":
        image = Image.new("RGB", (size, size), paper_colour(rng))
        draw_symbol(image, family, cx, cy, r, rng, colours)
        return image.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR, fillcolor=paper_colour(rng))
    if medium == "screen":
        image = draw_feed(size, rng, with_image=False)
        draw = ImageDraw.Draw(image)
        draw.rectangle((size * 0.1, size * 0.25, size * 0.9, size * 0.8), fill=random_colour(rng, 40, 180))
        draw_symbol(image, family, size / 2, size * 0.525, size * 0.22, rng, colours)
        return image
    if medium == "poster":
        image = wall(size, rng)
        box = poster_frame(image, rng)
        px, py = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        draw_symbol(image, family, px, py, min(box[2] - box[0], box[3] - box[1]) * 0.38, rng, colours)
        pins(image, box, rng)
        return image
    raise ValueError(f"unknown medium {medium!r}")
