"""Shared drawing helpers for the synthetic scenes: bundled photographs, colours, backdrops, frames."""
from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps


@functools.cache
def load_photo(name: str) -> Image.Image:
    """One of the bundled photographs as an RGB PIL image, at most 640 px a side (loaded once per process)."""
    from skimage import data

    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        array = load_sample_image(f"{name}.jpg")
    elif name == "motorcycle":
        array = data.stereo_motorcycle()[0]
    elif name == "hubble":
        array = data.hubble_deep_field()
    elif name == "cells":
        array = data.immunohistochemistry()
    else:
        array = getattr(data, name)()
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    image = Image.fromarray(np.asarray(array)).convert("RGB")
    image.thumbnail((640, 640), Image.BILINEAR)
    return image


@functools.cache
def lfw_faces() -> np.ndarray:
    """The 100 face crops (25×25 grey, 0..1) of scikit-image's LFW subset."""
    from skimage import data

    return data.lfw_subset()[:100]


def crop_jitter(photo: Image.Image, size: int, rng: np.random.Generator, area=(0.55, 1.0)) -> Image.Image:
    """Random-resized crop, random flip and colour jitter."""
    w, h = photo.size
    a = w * h * rng.uniform(*area)
    ratio = math.exp(rng.uniform(math.log(0.8), math.log(1.25)))
    cw = max(8, min(w, int(round(math.sqrt(a * ratio)))))
    ch = max(8, min(h, int(round(math.sqrt(a / ratio)))))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    image = photo.crop((x0, y0, x0 + cw, y0 + ch)).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    return jitter(image, rng)


def jitter(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.15))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.75, 1.25))
    return ImageEnhance.Color(image).enhance(rng.uniform(0.7, 1.3))


SKIN = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 30))


PAPERS = ((246, 232, 190), (236, 214, 170), (200, 222, 250), (250, 205, 200), (215, 240, 190), (240, 220, 240))


def random_colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, size=3))


def gradient(size: int, top: tuple, bottom: tuple, horizontal: bool = False) -> Image.Image:
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    rows = (1 - t) * np.array(top)[None, None, :] + t * np.array(bottom)[None, None, :]
    array = np.repeat(rows, size, axis=1).astype(np.uint8)
    return Image.fromarray(array.transpose(1, 0, 2) if horizontal else array)


def wall(size: int, rng: np.random.Generator) -> Image.Image:
    image = gradient(size, random_colour(rng, 60, 220), random_colour(rng, 30, 190))
    floor = int(size * rng.uniform(0.72, 0.86))
    ImageDraw.Draw(image).rectangle((0, floor, size, size), fill=random_colour(rng, 40, 160))
    return image


def outdoor(size: int, rng: np.random.Generator, ground: tuple | None = None) -> Image.Image:
    sky = (int(rng.integers(40, 140)), int(rng.integers(110, 190)), int(rng.integers(180, 250)))
    image = gradient(size, sky, (int(rng.integers(150, 210)), int(rng.integers(170, 220)), 235))
    ground = ground or (int(rng.integers(40, 110)), int(rng.integers(110, 170)), int(rng.integers(30, 80)))
    ImageDraw.Draw(image).rectangle((0, int(size * rng.uniform(0.65, 0.8)), size, size), fill=ground)
    return image


def paper_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return PAPERS[int(rng.integers(len(PAPERS)))]


def backdrop(size: int, rng: np.random.Generator) -> Image.Image:
    kind = rng.random()
    if kind < 0.4:
        return wall(size, rng)
    if kind < 0.8:
        return outdoor(size, rng)
    return Image.new("RGB", (size, size), paper_colour(rng))


def disc(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, **kw) -> None:
    draw.ellipse((x - r, y - r, x + r, y + r), **kw)


def polar(cx, cy, radius, angle):
    return cx + radius * math.cos(angle), cy + radius * math.sin(angle)


def poster_frame(image: Image.Image, rng: np.random.Generator) -> tuple[int, int, int, int]:
    size = image.width
    w, h = size * rng.uniform(0.45, 0.7), size * rng.uniform(0.55, 0.8)
    x0, y0 = rng.uniform(0.05, 0.95 - w / size) * size, rng.uniform(0.05, 0.95 - h / size) * size
    box = tuple(int(v) for v in (x0, y0, x0 + w, y0 + h))
    draw = ImageDraw.Draw(image)
    draw.rectangle((box[0] + 6, box[1] + 6, box[2] + 6, box[3] + 6), fill=(30, 30, 30))  # shadow
    draw.rectangle(box, fill=random_colour(rng, 60, 200), outline=random_colour(rng, 20, 120), width=max(3, size // 50))
    return box


def pins(image: Image.Image, box, rng: np.random.Generator) -> None:
    draw = ImageDraw.Draw(image)
    colour = random_colour(rng, 120, 250)
    for x, y in ((box[0], box[1]), (box[2], box[1])):
        disc(draw, x + 10, y + 10, max(3, image.width // 70), fill=colour)
