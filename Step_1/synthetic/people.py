"""Real people: photographs, face collages, drawn figures and portraits, crowds, stick figures, a video call."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from Step_1.synthetic.drawing import (
    SKIN,
    backdrop,
    crop_jitter,
    disc,
    lfw_faces,
    load_photo,
    outdoor,
    paper_colour,
    random_colour,
)

PERSON_PHOTOS = ("astronaut", "camera")


def face_tile(size: int, rng: np.random.Generator) -> Image.Image:
    """A face photograph (scikit-image's LFW subset), tinted, size×size."""
    faces = lfw_faces()
    grey = Image.fromarray((faces[int(rng.integers(len(faces)))] * 255).astype(np.uint8)).resize((size, size),
                                                                                                Image.BICUBIC)
    dark, light = random_colour(rng, 0, 80), random_colour(rng, 150, 240)
    return ImageOps.colorize(grey, dark, light)


def photo_faces(size: int, rng: np.random.Generator) -> Image.Image:
    """One face close-up, or a grid of faces (a collage of real people)."""
    n = int(rng.choice([1, 1, 2, 3]))
    if n == 1:
        return face_tile(size, rng)
    image = Image.new("RGB", (size, size), random_colour(rng, 20, 120))
    cell = size // n
    gap = max(2, size // 80)
    for i in range(n):
        for j in range(n):
            image.paste(face_tile(cell - gap, rng), (j * cell + gap // 2, i * cell + gap // 2))
    return image


def photo_person(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    return crop_jitter(load_photo(name), size, rng, area=(0.3, 1.0))


def figure(draw: ImageDraw.ImageDraw, cx: float, feet: float, height: float, rng: np.random.Generator, *,
           skin, cloth, legs=(40, 40, 60), face: bool = True, hair=None, head: str = "round",
           arms_up: bool = False) -> tuple[float, float, float]:
    """A standing figure; returns (head centre x, head centre y, head radius)."""
    head_r = height * 0.12
    head_cy = feet - height + head_r
    shoulder = head_cy + head_r * 1.2
    hip = shoulder + height * 0.38
    limb = max(2, int(height * 0.07))
    half = height * 0.14
    draw.rounded_rectangle((cx - half, shoulder, cx + half, hip), radius=max(1, int(half * 0.6)), fill=cloth)
    for side in (-1, 1):
        lift = -height * rng.uniform(0.1, 0.3) if arms_up else height * rng.uniform(0.05, 0.35)
        hand = (cx + side * height * rng.uniform(0.2, 0.32), shoulder + lift)
        draw.line((cx + side * half * 0.8, shoulder + limb, *hand), fill=cloth, width=limb)
        disc(draw, *hand, limb, fill=skin)
        draw.line((cx + side * half * 0.5, hip, cx + side * half * 0.9, feet), fill=legs, width=limb + 1)
    if head == "box":
        draw.rectangle((cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r), fill=skin)
    else:
        disc(draw, cx, head_cy, head_r, fill=skin)
    if hair is not None:
        draw.chord((cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r), 180, 360, fill=hair)
    if face:
        eye = max(1, int(head_r * 0.15))
        for side in (-1, 1):
            disc(draw, cx + side * head_r * 0.4, head_cy + head_r * 0.15, eye, fill=(20, 20, 20))
        draw.arc((cx - head_r * 0.4, head_cy + head_r * 0.1, cx + head_r * 0.4, head_cy + head_r * 0.6), 20, 160,
                 fill=(60, 20, 20), width=max(1, eye // 2))
    return cx, head_cy, head_r


def _person_colours(rng: np.random.Generator) -> dict:
    return {"skin": SKIN[int(rng.integers(len(SKIN)))], "cloth": random_colour(rng, 20, 230),
            "legs": random_colour(rng, 20, 110), "hair": random_colour(rng, 0, 120)}


def head_and_shoulders(image: Image.Image, box: tuple[float, float, float, float], rng: np.random.Generator,
                       colours: dict | None = None, face: bool = True) -> None:
    """Head and shoulders filling `box` (x0, y0, x1, y1)."""
    draw = ImageDraw.Draw(image)
    c = colours or _person_colours(rng)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = x0 + w * rng.uniform(0.4, 0.6)
    r = min(w, h) * rng.uniform(0.2, 0.27)
    cy = y0 + h * 0.42
    draw.chord((cx - w * 0.42, y1 - h * 0.28, cx + w * 0.42, y1 + h * 0.35), 180, 360, fill=c["cloth"])
    draw.rectangle((cx - r * 0.35, cy + r * 0.7, cx + r * 0.35, y1 - h * 0.2), fill=c["skin"])
    for side in (-1, 1):
        disc(draw, cx + side * r * 0.98, cy + r * 0.1, r * 0.2, fill=c["skin"])
    draw.ellipse((cx - r * 0.9, cy - r, cx + r * 0.9, cy + r * 1.05), fill=c["skin"])
    if c.get("hair") is not None:
        draw.chord((cx - r * 0.95, cy - r * 1.1, cx + r * 0.95, cy + r * 0.6), 180, 360, fill=c["hair"])
    if face:
        eye = max(1, r * 0.1)
        for side in (-1, 1):
            disc(draw, cx + side * r * 0.38, cy + r * 0.1, eye, fill=(25, 25, 25))
            brow = (cx + side * r * 0.55, cy - r * 0.15, cx + side * r * 0.2, cy - r * 0.2)
            draw.line(brow, fill=c["hair"] or (40, 30, 20), width=max(1, int(eye * 0.7)))
        draw.line((cx, cy + r * 0.15, cx - r * 0.08, cy + r * 0.45), fill=(90, 50, 40), width=max(1, int(eye * 0.5)))
        draw.arc((cx - r * 0.35, cy + r * 0.35, cx + r * 0.35, cy + r * 0.8), 20, 160, fill=(110, 30, 30),
                 width=max(1, int(eye * 0.6)))


def draw_figures(size: int, rng: np.random.Generator) -> Image.Image:
    """One to four full-body figures on a wall, street or paper."""
    image = backdrop(size, rng)
    draw = ImageDraw.Draw(image)
    count = int(rng.integers(1, 5))
    for _ in range(count):
        c = _person_colours(rng)
        scale = rng.uniform(0.45, 0.85) if count == 1 else rng.uniform(0.3, 0.55)
        figure(draw, rng.uniform(0.15, 0.85) * size, rng.uniform(0.82, 0.98) * size, size * scale, rng,
               skin=c["skin"], cloth=c["cloth"], legs=c["legs"], hair=c["hair"], arms_up=rng.random() < 0.3)
    return image


def draw_portrait(size: int, rng: np.random.Generator) -> Image.Image:
    image = backdrop(size, rng)
    head_and_shoulders(image, (0, size * rng.uniform(0.0, 0.15), size, size), rng)
    return image


def draw_crowd(size: int, rng: np.random.Generator) -> Image.Image:
    image = backdrop(size, rng)
    rows = int(rng.integers(2, 4))
    for row in range(rows):
        per = int(rng.integers(3, 7))
        w = size / per
        top = size * (0.2 + 0.6 * row / rows)
        for k in range(per):
            x = (k + rng.uniform(-0.15, 0.15)) * w
            head_and_shoulders(image, (x, top, x + w * 1.1, top + w * 1.25), rng)
    return image


def draw_stick(size: int, rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (size, size), paper_colour(rng)) if rng.random() < 0.5 else outdoor(size, rng)
    draw = ImageDraw.Draw(image)
    ink = random_colour(rng, 0, 90)
    for _ in range(int(rng.integers(1, 5))):
        h = size * rng.uniform(0.3, 0.6)
        cx, feet = rng.uniform(0.15, 0.85) * size, rng.uniform(0.8, 0.97) * size
        w = max(2, int(h * 0.03))
        r = h * 0.13
        neck, hip = feet - h + 2 * r, feet - h * 0.42
        draw.ellipse((cx - r, neck - 2 * r, cx + r, neck), outline=ink, width=w)
        draw.line((cx, neck, cx, hip), fill=ink, width=w)
        for side in (-1, 1):
            hand = (cx + side * h * 0.22, neck + h * rng.uniform(-0.1, 0.25))
            draw.line((cx, neck + h * 0.08, *hand), fill=ink, width=w)
            draw.line((cx, hip, cx + side * h * 0.16, feet), fill=ink, width=w)
            disc(draw, cx + side * r * 0.4, neck - r * 1.1, max(1, w * 0.6), fill=ink)
    return image


def draw_videocall(size: int, rng: np.random.Generator) -> Image.Image:
    """A video-call screenshot: a grid of people tiles and a toolbar."""
    image = Image.new("RGB", (size, size), random_colour(rng, 20, 50))
    draw = ImageDraw.Draw(image)
    n = int(rng.choice([2, 2, 3]))
    pad = size * 0.02
    cell = (size - pad) / n
    for i in range(n):
        for j in range(n):
            top, bottom = i * cell * 0.85 + size * 0.05, (i + 1) * cell * 0.85 + size * 0.05 - pad
            box = (j * cell + pad, top, (j + 1) * cell, bottom)
            draw.rectangle(box, fill=random_colour(rng, 60, 170))
            head_and_shoulders(image, box, rng)
            bar = max(2.0, size * 0.04)
            draw.rectangle((box[0] + 1, box[3] - bar, box[0] + cell * 0.4, box[3] - 1), fill=(40, 40, 45))
    y = size * 0.9
    for k, colour in enumerate(((90, 90, 95), (90, 90, 95), (200, 40, 40), (90, 90, 95))):
        disc(draw, size * (0.3 + 0.13 * k), y, size * 0.035, fill=colour)
    return image
