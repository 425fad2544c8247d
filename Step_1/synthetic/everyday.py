"""Everyday content, photographed or drawn: animals, food, vehicles, landscapes and objects."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from Step_1.synthetic.drawing import disc, gradient, load_photo, outdoor, polar, random_colour, wall


def draw_fish(size, rng):
    image = gradient(size, (20, 90, 160), (10, 40, 90))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 5))):
        x, y, r = rng.uniform(0.2, 0.8) * size, rng.uniform(0.2, 0.8) * size, size * rng.uniform(0.06, 0.16)
        body = random_colour(rng, 100, 255)
        draw.ellipse((x - r * 1.5, y - r, x + r * 1.5, y + r), fill=body)
        draw.polygon([(x + r * 1.3, y), (x + r * 2.3, y - r * 0.8), (x + r * 2.3, y + r * 0.8)], fill=body)
        disc(draw, x - r * 0.8, y - r * 0.2, r * 0.15, fill=(10, 10, 10))
    return image


def draw_bird(size, rng):
    image = outdoor(size, rng)
    draw = ImageDraw.Draw(image)
    y = size * rng.uniform(0.55, 0.75)
    draw.line((0, y, size, y - size * 0.1), fill=(90, 60, 30), width=max(3, size // 40))
    for _ in range(int(rng.integers(1, 4))):
        x, r = rng.uniform(0.2, 0.8) * size, size * rng.uniform(0.06, 0.12)
        by = y - size * 0.1 * x / size - r
        body = random_colour(rng, 40, 240)
        draw.ellipse((x - r * 1.3, by - r, x + r * 1.3, by + r), fill=body)
        disc(draw, x + r * 1.1, by - r * 0.9, r * 0.6, fill=body)
        beak = [(x + r * 1.6, by - r), (x + r * 2.2, by - r * 0.8), (x + r * 1.6, by - r * 0.6)]
        draw.polygon(beak, fill=(240, 170, 30))
        disc(draw, x + r * 1.3, by - r * 1.05, r * 0.1, fill=(10, 10, 10))
    return image


def draw_dog(size, rng):
    image = outdoor(size, rng)
    draw = ImageDraw.Draw(image)
    fur = random_colour(rng, 60, 200)
    x, y, r = rng.uniform(0.3, 0.6) * size, size * rng.uniform(0.6, 0.75), size * rng.uniform(0.1, 0.16)
    draw.ellipse((x - r * 1.8, y - r, x + r * 1.8, y + r), fill=fur)
    for dx in (-1.3, -0.7, 0.7, 1.3):
        draw.line((x + dx * r, y + r * 0.5, x + dx * r, y + r * 2), fill=fur, width=max(3, int(r * 0.35)))
    disc(draw, x + r * 2, y - r * 1.1, r * 0.8, fill=fur)
    draw.ellipse((x + r * 1.5, y - r * 1.6, x + r * 1.9, y - r * 0.6), fill=tuple(v // 2 for v in fur))
    disc(draw, x + r * 2.3, y - r * 1.2, r * 0.1, fill=(10, 10, 10))
    disc(draw, x + r * 2.75, y - r * 0.9, r * 0.15, fill=(10, 10, 10))
    draw.line((x - r * 1.8, y - r * 0.3, x - r * 2.6, y - r * 1.2), fill=fur, width=max(3, int(r * 0.25)))
    return image


def _table(size, rng):
    image = wall(size, rng)
    ImageDraw.Draw(image).rectangle((0, size * 0.6, size, size), fill=random_colour(rng, 80, 170))
    return image


def draw_pizza(size, rng):
    image = _table(size, rng)
    draw = ImageDraw.Draw(image)
    cx, cy, r = size / 2, size * 0.6, size * rng.uniform(0.3, 0.4)
    disc(draw, cx, cy, r, fill=(220, 160, 70))
    disc(draw, cx, cy, r * 0.88, fill=(200, 60, 40))
    for _ in range(int(rng.integers(6, 12))):
        disc(draw, *polar(cx, cy, r * rng.uniform(0.1, 0.7), rng.uniform(0, 6.3)), r * 0.1, fill=(150, 30, 30))
    for k in range(int(rng.choice([6, 8]))):
        draw.line((cx, cy, *polar(cx, cy, r, k * 2 * math.pi / 8)), fill=(180, 120, 50), width=2)
    return image


def draw_fruit(size, rng):
    image = _table(size, rng)
    draw = ImageDraw.Draw(image)
    draw.chord((size * 0.15, size * 0.35, size * 0.85, size * 0.85), 0, 180, fill=random_colour(rng, 60, 200))
    for _ in range(int(rng.integers(3, 7))):
        x, y, r = rng.uniform(0.28, 0.72) * size, rng.uniform(0.45, 0.58) * size, size * rng.uniform(0.06, 0.1)
        disc(draw, x, y, r, fill=[(220, 40, 40), (250, 150, 30), (120, 200, 50), (240, 220, 60)][int(rng.integers(4))])
        draw.ellipse((x, y - r * 1.3, x + r * 0.6, y - r * 0.8), fill=(50, 140, 50))
    return image


def draw_cake(size, rng):
    image = _table(size, rng)
    draw = ImageDraw.Draw(image)
    x0, x1, y = size * 0.25, size * 0.75, size * 0.75
    for k in range(int(rng.integers(2, 4))):
        h = size * 0.12
        draw.rectangle((x0 + k * size * 0.04, y - h, x1 - k * size * 0.04, y), fill=random_colour(rng, 120, 250))
        y -= h
    for k in range(int(rng.integers(3, 7))):
        x = x0 + size * 0.08 + k * size * 0.06
        draw.rectangle((x, y - size * 0.08, x + size * 0.015, y), fill=random_colour(rng, 100, 255))
        disc(draw, x + size * 0.007, y - size * 0.095, size * 0.012, fill=(255, 200, 40))
    return image


def draw_burger(size, rng):
    image = _table(size, rng)
    draw = ImageDraw.Draw(image)
    cx, y, w = size / 2, size * 0.72, size * rng.uniform(0.28, 0.38)
    for colour, h in (((200, 140, 60), 0.06), ((100, 50, 30), 0.07), ((240, 200, 50), 0.03), ((80, 170, 60), 0.03),
                      ((210, 60, 40), 0.03)):
        draw.rounded_rectangle((cx - w, y - size * h, cx + w, y), radius=int(size * 0.02), fill=colour)
        y -= size * h
    draw.chord((cx - w, y - size * 0.2, cx + w, y + size * 0.05), 180, 360, fill=(210, 150, 70))
    return image


def _road(size, rng):
    image = outdoor(size, rng, ground=(70, 70, 75))
    return image


def _wheels(draw, xs, y, r):
    for x in xs:
        disc(draw, x, y, r, fill=(20, 20, 20))
        disc(draw, x, y, r * 0.45, fill=(150, 150, 150))


def draw_car(size, rng):
    image = _road(size, rng)
    draw = ImageDraw.Draw(image)
    x, y, w = size * rng.uniform(0.2, 0.35), size * 0.82, size * rng.uniform(0.45, 0.6)
    paint = random_colour(rng, 30, 240)
    draw.rounded_rectangle((x, y - size * 0.14, x + w, y), radius=int(size * 0.03), fill=paint)
    draw.polygon([(x + w * 0.2, y - size * 0.14), (x + w * 0.35, y - size * 0.25), (x + w * 0.7, y - size * 0.25),
                  (x + w * 0.85, y - size * 0.14)], fill=paint)
    draw.rectangle((x + w * 0.37, y - size * 0.23, x + w * 0.68, y - size * 0.15), fill=(150, 190, 220))
    _wheels(draw, (x + w * 0.2, x + w * 0.8), y, size * 0.05)
    return image


def draw_bus(size, rng):
    image = _road(size, rng)
    draw = ImageDraw.Draw(image)
    x, y, w = size * 0.08, size * 0.85, size * 0.84
    draw.rounded_rectangle((x, y - size * 0.35, x + w, y), radius=int(size * 0.03), fill=random_colour(rng, 60, 240))
    for k in range(5):
        wx = x + w * (0.05 + 0.18 * k)
        draw.rectangle((wx, y - size * 0.3, wx + w * 0.14, y - size * 0.18), fill=(140, 180, 210))
    _wheels(draw, (x + w * 0.2, x + w * 0.8), y, size * 0.055)
    return image


def draw_boat(size, rng):
    image = outdoor(size, rng, ground=(30, 90, 160))
    draw = ImageDraw.Draw(image)
    cx, y, w = rng.uniform(0.35, 0.65) * size, size * 0.78, size * rng.uniform(0.2, 0.3)
    draw.polygon([(cx - w, y - size * 0.08), (cx + w, y - size * 0.08), (cx + w * 0.7, y), (cx - w * 0.7, y)],
                 fill=random_colour(rng, 40, 200))
    draw.line((cx, y - size * 0.08, cx, y - size * 0.5), fill=(80, 60, 40), width=max(2, size // 100))
    draw.polygon([(cx + 3, y - size * 0.48), (cx + 3, y - size * 0.12), (cx + w * 0.9, y - size * 0.12)],
                 fill=random_colour(rng, 150, 250))
    return image


def draw_mountains(size: int, rng: np.random.Generator) -> Image.Image:
    sky_top = (int(rng.integers(20, 120)), int(rng.integers(80, 180)), int(rng.integers(150, 255)))
    horizon = (int(rng.integers(180, 255)), int(rng.integers(150, 230)), int(rng.integers(120, 220)))
    image = gradient(size, sky_top, horizon)
    draw = ImageDraw.Draw(image)
    r = rng.uniform(0.05, 0.12) * size
    sun = (255, int(rng.integers(180, 240)), 80)
    disc(draw, rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.35) * size, r, fill=sun)
    for layer in range(int(rng.integers(2, 4))):
        base = size * (0.55 + 0.1 * layer)
        xs = np.linspace(-0.1, 1.1, int(rng.integers(4, 8))) * size
        peaks = [(x, base - rng.uniform(0.05, 0.3) * size) for x in xs]
        shade = int(rng.integers(40, 120)) - layer * 10
        draw.polygon([(-10, size)] + peaks + [(size + 10, size)], fill=(shade, shade + 30, shade + 10))
    ground = size * rng.uniform(0.82, 0.92)
    draw.rectangle((0, ground, size, size), fill=(30, 90, 160) if rng.random() < 0.5 else (60, 120, 40))
    return image


def draw_city(size, rng):
    image = gradient(size, random_colour(rng, 10, 120), random_colour(rng, 100, 220))
    draw = ImageDraw.Draw(image)
    x = -size * 0.05
    while x < size:
        w, h = size * rng.uniform(0.08, 0.2), size * rng.uniform(0.2, 0.7)
        body = random_colour(rng, 30, 120)
        draw.rectangle((x, size - h, x + w, size), fill=body)
        for wy in np.arange(size - h + 8, size - 8, size * 0.05):
            for wx in np.arange(x + 4, x + w - 8, size * 0.04):
                if rng.random() < 0.5:
                    draw.rectangle((wx, wy, wx + size * 0.015, wy + size * 0.02), fill=(240, 210, 90))
        x += w + size * rng.uniform(0.0, 0.03)
    return image


def draw_beach(size, rng):
    image = gradient(size, (60, 150, 230), (170, 215, 245))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, size * 0.5, size, size * 0.7), fill=(30, 110, 180))
    draw.rectangle((0, size * 0.7, size, size), fill=(230, 200, 140))
    disc(draw, rng.uniform(0.1, 0.9) * size, size * 0.2, size * 0.07, fill=(255, 220, 80))
    px = rng.uniform(0.1, 0.9) * size
    draw.line((px, size * 0.85, px + size * 0.05, size * 0.45), fill=(110, 80, 40), width=max(3, size // 40))
    for k in range(5):
        draw.chord((px - size * 0.15, size * 0.38, px + size * 0.25, size * 0.55), 180 + 36 * k, 216 + 36 * k,
                   fill=(40, 150, 60))
    return image


def draw_mugs(size, rng):
    image = _table(size, rng)
    draw = ImageDraw.Draw(image)
    for k in range(int(rng.integers(1, 4))):
        x, w = size * (0.15 + 0.27 * k), size * 0.18
        colour = random_colour(rng, 40, 240)
        draw.rectangle((x, size * 0.5, x + w, size * 0.72), fill=colour)
        draw.arc((x + w * 0.8, size * 0.54, x + w * 1.4, size * 0.66), 270, 90, fill=colour, width=max(3, size // 60))
    return image


def draw_lamp(size, rng):
    image = wall(size, rng)
    draw = ImageDraw.Draw(image)
    cx = rng.uniform(0.3, 0.7) * size
    draw.polygon([(cx - size * 0.15, size * 0.45), (cx + size * 0.15, size * 0.45), (cx + size * 0.08, size * 0.2),
                  (cx - size * 0.08, size * 0.2)], fill=random_colour(rng, 100, 250))
    draw.line((cx, size * 0.45, cx, size * 0.85), fill=(60, 60, 60), width=max(3, size // 60))
    draw.ellipse((cx - size * 0.12, size * 0.83, cx + size * 0.12, size * 0.9), fill=(60, 60, 60))
    return image


def draw_books(size, rng):
    image = wall(size, rng)
    draw = ImageDraw.Draw(image)
    for shelf in (0.45, 0.85):
        draw.rectangle((0, size * shelf, size, size * (shelf + 0.03)), fill=(100, 70, 40))
        x = size * 0.03
        while x < size * 0.95:
            w, h = size * rng.uniform(0.03, 0.07), size * rng.uniform(0.2, 0.32)
            draw.rectangle((x, size * shelf - h, x + w, size * shelf), fill=random_colour(rng, 30, 230))
            x += w + 1
    return image


def draw_horse(size, rng):
    mask = load_photo("horse").convert("L")
    image = outdoor(size, rng)
    w, h = mask.size
    scale = rng.uniform(0.6, 0.9) * size / w
    mask = mask.resize((int(w * scale), int(h * scale)))
    solid = Image.new("RGB", mask.size, random_colour(rng, 20, 140))
    image.paste(solid, (int(rng.uniform(0, size - mask.width)), int(size * 0.9 - mask.height)), ImageOps.invert(mask))
    return image
