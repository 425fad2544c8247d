"""Meme backgrounds by content class: real photographs (scikit-image, scikit-learn) and drawn scenes.

`person` images are the target of mocking captions; `symbol` images carry an invented hate emblem.
Every other class is neutral content.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

CONTENTS = ("person", "symbol", "animal", "food", "vehicle", "landscape", "object")

# Real photographs per content class, by loader name; drawn scenes are added where marked.
PHOTOS = {
    "person": ("astronaut", "camera"),
    "animal": ("chelsea", "horse"),
    "food": ("coffee",),
    "vehicle": ("rocket", "motorcycle"),
    "landscape": ("china", "hubble", "moon"),
    "object": ("flower", "coins", "brick", "grass", "gravel"),
}
DRAWN_SHARE = {"person": 0.5, "landscape": 0.4}


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> Image.Image:
    """One of the bundled photographs as an RGB PIL image (loaded once per process)."""
    from skimage import data

    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        array = load_sample_image(f"{name}.jpg")
    elif name == "motorcycle":
        array = data.stereo_motorcycle()[0]
    elif name == "hubble":
        array = data.hubble_deep_field()
    else:
        array = getattr(data, name)()
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    image = Image.fromarray(np.asarray(array))
    return image.convert("RGB")


def _crop_jitter(photo: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """Random-resized crop (55–100% of the area), random flip and colour jitter."""
    w, h = photo.size
    area = w * h * rng.uniform(0.55, 1.0)
    ratio = math.exp(rng.uniform(math.log(0.8), math.log(1.25)))
    cw = min(w, int(round(math.sqrt(area * ratio))))
    ch = min(h, int(round(math.sqrt(area / ratio))))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    image = photo.crop((x0, y0, x0 + cw, y0 + ch)).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.2))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.75, 1.25))
    return ImageEnhance.Color(image).enhance(rng.uniform(0.7, 1.3))


def _random_colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, size=3))


def _gradient(size: int, top: tuple, bottom: tuple) -> Image.Image:
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    rows = (1 - t) * np.array(top)[None, None, :] + t * np.array(bottom)[None, None, :]
    return Image.fromarray(np.repeat(rows, size, axis=1).astype(np.uint8))


SKIN = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 30))


def draw_people(size: int, rng: np.random.Generator) -> Image.Image:
    """A wall or street background with one to five drawn figures (head, body, arms, legs)."""
    image = _gradient(size, _random_colour(rng, 60, 230), _random_colour(rng, 30, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, int(size * rng.uniform(0.7, 0.85)), size, size), fill=_random_colour(rng, 40, 160))
    count = int(rng.integers(1, 6))
    for _ in range(count):
        scale = rng.uniform(0.35, 0.8) if count == 1 else rng.uniform(0.25, 0.5)
        height = size * scale
        cx = rng.uniform(0.15, 0.85) * size
        feet = rng.uniform(0.8, 0.98) * size
        head_r = height * 0.12
        head_cy = feet - height + head_r
        shoulder = head_cy + head_r * 1.2
        hip = shoulder + height * 0.38
        body = _random_colour(rng, 20, 230)
        skin = SKIN[rng.integers(len(SKIN))]
        limb = max(2, int(height * 0.07))
        half = height * 0.14
        draw.rounded_rectangle((cx - half, shoulder, cx + half, hip), radius=int(half * 0.6), fill=body)
        for side in (-1, 1):
            hand = (cx + side * height * rng.uniform(0.2, 0.32), shoulder + height * rng.uniform(0.05, 0.35))
            draw.line((cx + side * half * 0.8, shoulder + limb, *hand), fill=body, width=limb)
            draw.ellipse((hand[0] - limb, hand[1] - limb, hand[0] + limb, hand[1] + limb), fill=skin)
            draw.line((cx + side * half * 0.5, hip, cx + side * half * 0.9, feet), fill=(40, 40, 60), width=limb + 1)
        draw.ellipse((cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r), fill=skin)
        hair = _random_colour(rng, 0, 120)
        draw.chord((cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r), 180, 360, fill=hair)
        eye = max(1, int(head_r * 0.15))
        for side in (-1, 1):
            ex, ey = cx + side * head_r * 0.4, head_cy + head_r * 0.15
            draw.ellipse((ex - eye, ey - eye, ex + eye, ey + eye), fill=(20, 20, 20))
    return image


def draw_landscape(size: int, rng: np.random.Generator) -> Image.Image:
    """Sky gradient, sun or moon, layered mountains and a ground or sea band."""
    sky_top = (int(rng.integers(20, 120)), int(rng.integers(80, 180)), int(rng.integers(150, 255)))
    image = _gradient(size, sky_top, (int(rng.integers(180, 255)), int(rng.integers(150, 230)), int(rng.integers(120, 220))))
    draw = ImageDraw.Draw(image)
    r = rng.uniform(0.05, 0.12) * size
    sx, sy = rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.35) * size
    draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(255, int(rng.integers(180, 240)), 80))
    for layer in range(int(rng.integers(2, 4))):
        base = size * (0.55 + 0.1 * layer)
        xs = np.linspace(-0.1, 1.1, int(rng.integers(4, 8))) * size
        peaks = [(x, base - rng.uniform(0.05, 0.3) * size) for x in xs]
        shade = int(rng.integers(40, 120)) - layer * 10
        draw.polygon([(-10, size)] + peaks + [(size + 10, size)], fill=(shade, shade + 30, shade + 10))
    ground = size * rng.uniform(0.82, 0.92)
    water = rng.random() < 0.5
    draw.rectangle((0, ground, size, size), fill=(30, 90, 160) if water else (60, 120, 40))
    return image


def draw_symbol(size: int, rng: np.random.Generator, background: Image.Image) -> Image.Image:
    """The invented hate emblem: a dark ring holding a red three-pronged star, on a flag or poster."""
    image = background.copy()
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.5:
        draw.rectangle((0, 0, size, size), fill=_random_colour(rng, 0, 90))
    cx, cy = rng.uniform(0.35, 0.65) * size, rng.uniform(0.4, 0.6) * size
    r = rng.uniform(0.22, 0.36) * size
    ring = max(3, int(r * 0.16))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(200, 20, 30), outline=(15, 15, 15), width=ring)
    turn = rng.uniform(0, 2 * math.pi)
    inner = r * 0.75
    for k in range(3):
        angle = turn + k * 2 * math.pi / 3
        tip = (cx + inner * math.cos(angle), cy + inner * math.sin(angle))
        left = (cx + inner * 0.28 * math.cos(angle + 1.9), cy + inner * 0.28 * math.sin(angle + 1.9))
        right = (cx + inner * 0.28 * math.cos(angle - 1.9), cy + inner * 0.28 * math.sin(angle - 1.9))
        draw.polygon([tip, left, (cx, cy), right], fill=(15, 15, 15))
    return image


def make_background(content: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A size×size RGB image of the given content class."""
    if content == "symbol":
        base = PHOTOS["landscape"] + PHOTOS["object"]
        photo = load_photo(base[rng.integers(len(base))])
        return draw_symbol(size, rng, _crop_jitter(photo, size, rng))
    if rng.random() < DRAWN_SHARE.get(content, 0.0):
        return draw_people(size, rng) if content == "person" else draw_landscape(size, rng)
    names = PHOTOS[content]
    return _crop_jitter(load_photo(names[rng.integers(len(names))]), size, rng)
