"""Flat graphics: abstract images (shapes, waves, blobs, noise), app screenshots and plain text cards."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from Step_1.synthetic.drawing import disc, gradient, random_colour
from Step_1.synthetic.everyday import draw_beach, draw_city, draw_mountains


def draw_shapes(size, rng):
    image = Image.new("RGB", (size, size), random_colour(rng, 0, 256))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(5, 20))):
        x, y, r = rng.uniform(0, size), rng.uniform(0, size), size * rng.uniform(0.04, 0.25)
        kind = rng.random()
        colour = random_colour(rng, 0, 256)
        if kind < 0.4:
            draw.rectangle((x - r, y - r * rng.uniform(0.3, 1), x + r, y + r), fill=colour)
        elif kind < 0.7:
            draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=colour)
        else:
            disc(draw, x, y, r, fill=colour)
    return image


def draw_waves(size, rng):
    y = np.arange(size)[:, None]
    x = np.arange(size)[None, :]
    phase = np.sin(x / size * rng.uniform(4, 14) + rng.uniform(0, 6)) * size * rng.uniform(0.03, 0.1)
    band = ((y + phase) / size * rng.uniform(4, 10)).astype(int) % 4
    palette = np.array([random_colour(rng, 0, 256) for _ in range(4)], dtype=np.uint8)
    return Image.fromarray(palette[band])


def draw_blobs(size, rng):
    small = rng.random((12, 12))
    field = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC))
    a, b = np.array(random_colour(rng, 0, 256)), np.array(random_colour(rng, 0, 256))
    mask = (field > rng.uniform(100, 160))[:, :, None]
    return Image.fromarray(np.where(mask, a, b).astype(np.uint8))


def draw_noise(size, rng):
    small = rng.random((24, 24, 3))
    return Image.fromarray((small * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)


def _ui(size, rng):
    """Screen colours that stay out of the OCR's white range: grey light mode or dark mode."""
    if rng.random() < 0.5:
        return (int(rng.integers(175, 188)),) * 3, (120, 120, 125), (150, 195, 250), (80, 80, 85)
    return (int(rng.integers(18, 40)),) * 3, (60, 60, 66), (40, 100, 200), (150, 150, 155)


def _bars(draw, x, y, width, rows, colour, size, rng):
    for k in range(rows):
        top = y + k * size * 0.035
        draw.rounded_rectangle((x, top, x + width * rng.uniform(0.5, 1.0), top + size * 0.018), radius=3, fill=colour)


def draw_chat(size, rng):
    bg, panel, accent, text = _ui(size, rng)
    image = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size, size * 0.1), fill=panel)
    disc(draw, size * 0.07, size * 0.05, size * 0.03, fill=random_colour(rng, 60, 200))
    y = size * 0.14
    while y < size * 0.82:
        rows = int(rng.integers(1, 4))
        h = rows * size * 0.035 + size * 0.02
        mine = rng.random() < 0.5
        w = size * rng.uniform(0.35, 0.6)
        x = size * 0.95 - w if mine else size * 0.05
        draw.rounded_rectangle((x, y, x + w, y + h), radius=int(size * 0.025), fill=accent if mine else panel)
        _bars(draw, x + size * 0.02, y + size * 0.012, w - size * 0.04, rows, text, size, rng)
        y += h + size * 0.03
    draw.rectangle((0, size * 0.88, size, size), fill=panel)
    return image


def draw_feed(size, rng, with_image: bool = True):
    bg, panel, accent, text = _ui(size, rng)
    image = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(image)
    disc(draw, size * 0.09, size * 0.1, size * 0.05, fill=random_colour(rng, 60, 200))
    _bars(draw, size * 0.17, size * 0.07, size * 0.4, 2, text, size, rng)
    if with_image:
        thumb = draw_mountains(int(size * 0.8), rng) if rng.random() < 0.5 else draw_shapes(int(size * 0.8), rng)
        image.paste(thumb.resize((int(size * 0.8), int(size * 0.55))), (int(size * 0.1), int(size * 0.25)))
    for k in range(3):
        disc(draw, size * (0.15 + 0.12 * k), size * 0.88, size * 0.03, outline=text, width=2)
    return image


def draw_video(size, rng):
    bg, panel, accent, text = _ui(size, rng)
    image = Image.new("RGB", (size, size), bg)
    thumb = [draw_city, draw_beach, draw_mountains, draw_shapes][int(rng.integers(4))](size, rng)
    image.paste(thumb.resize((size, int(size * 0.56))), (0, int(size * 0.12)))
    draw = ImageDraw.Draw(image)
    cx, cy, r = size / 2, size * 0.4, size * 0.08
    draw.polygon([(cx - r * 0.6, cy - r), (cx - r * 0.6, cy + r), (cx + r, cy)], fill=(235, 235, 235))
    draw.rectangle((0, size * 0.68, size, size * 0.69), fill=(90, 90, 90))
    draw.rectangle((0, size * 0.68, size * rng.uniform(0.1, 0.9), size * 0.69), fill=(220, 40, 40))
    _bars(draw, size * 0.05, size * 0.74, size * 0.8, 2, text, size, rng)
    return image


def draw_notes(size, rng):
    bg, panel, accent, text = _ui(size, rng)
    image = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size, size * 0.08), fill=panel)
    y = size * 0.14
    while y < size * 0.85:
        rows = int(rng.integers(1, 5))
        _bars(draw, size * 0.06, y, size * 0.85, rows, text, size, rng)
        y += rows * size * 0.035 + size * 0.05
    return image


def draw_settings(size, rng):
    bg, panel, accent, text = _ui(size, rng)
    image = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(image)
    for k in range(8):
        y = size * (0.08 + 0.11 * k)
        draw.rectangle((0, y, size, y + size * 0.1), fill=panel)
        _bars(draw, size * 0.06, y + size * 0.04, size * 0.45, 1, text, size, rng)
        on = rng.random() < 0.5
        draw.rounded_rectangle((size * 0.78, y + size * 0.025, size * 0.92, y + size * 0.075), radius=int(size * 0.025),
                               fill=accent if on else (90, 90, 95))
        disc(draw, size * (0.895 if on else 0.805), y + size * 0.05, size * 0.02, fill=text)
    return image


def draw_plain(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    colour = random_colour(rng, 0, 200)
    if kind == "solid":
        return Image.new("RGB", (size, size), colour)
    if kind == "gradient":
        return gradient(size, colour, random_colour(rng, 0, 200), horizontal=rng.random() < 0.5)
    image = Image.new("RGB", (size, size), colour)
    draw = ImageDraw.Draw(image)
    if kind == "split":
        draw.rectangle((0, size / 2, size, size), fill=random_colour(rng, 0, 200))
    else:
        draw.rectangle((size * 0.05, size * 0.05, size * 0.95, size * 0.95), outline=random_colour(rng, 0, 200),
                       width=max(4, size // 25))
    return image
