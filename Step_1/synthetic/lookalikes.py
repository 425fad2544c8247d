"""People-like non-people: statues, mannequins, posters of people, dressed animals, snowmen, robots, scarecrows."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from Step_1.synthetic.drawing import (
    backdrop,
    crop_jitter,
    disc,
    gradient,
    jitter,
    load_photo,
    outdoor,
    pins,
    poster_frame,
    random_colour,
    wall,
)
from Step_1.synthetic.people import PERSON_PHOTOS, face_tile, figure, head_and_shoulders


def draw_statue(size: int, rng: np.random.Generator) -> Image.Image:
    image = wall(size, rng) if rng.random() < 0.5 else outdoor(size, rng)
    draw = ImageDraw.Draw(image)
    stone = [(150, 150, 145), (120, 100, 70), (90, 130, 110), (170, 160, 140)][int(rng.integers(4))]
    shade = tuple(max(0, v - 35) for v in stone)
    cx, h = rng.uniform(0.3, 0.7) * size, size * rng.uniform(0.5, 0.7)
    base = size * rng.uniform(0.78, 0.9)
    draw.rectangle((cx - h * 0.3, base, cx + h * 0.3, size), fill=shade)
    draw.rectangle((cx - h * 0.35, base - h * 0.04, cx + h * 0.35, base), fill=stone)
    figure(draw, cx, base - h * 0.04, h, rng, skin=stone, cloth=shade, legs=stone, face=False, hair=shade,
           arms_up=rng.random() < 0.4)
    return image


def draw_mannequin(size: int, rng: np.random.Generator) -> Image.Image:
    image = wall(size, rng)
    draw = ImageDraw.Draw(image)
    shell = [(225, 200, 170), (40, 40, 40), (190, 190, 200), (210, 180, 150)][int(rng.integers(4))]
    for _ in range(int(rng.integers(1, 4))):
        cx, h = rng.uniform(0.2, 0.8) * size, size * rng.uniform(0.45, 0.7)
        feet = size * rng.uniform(0.8, 0.9)
        draw.line((cx, feet - h * 0.4, cx, feet + size * 0.05), fill=(80, 80, 80), width=max(2, int(size * 0.012)))
        draw.ellipse((cx - h * 0.15, feet + size * 0.04, cx + h * 0.15, feet + size * 0.07), fill=(70, 70, 70))
        figure(draw, cx, feet, h, rng, skin=shell, cloth=random_colour(rng, 30, 220) if rng.random() < 0.6 else shell,
               legs=shell, face=False, head="round")
    for _ in range(int(rng.integers(2, 5))):  # shop-window reflections
        x = rng.uniform(0, size)
        draw.line((x, 0, x + size * 0.3, size), fill=(200, 210, 225), width=int(rng.integers(2, 6)))
    draw.rectangle((0, 0, size - 1, size - 1), outline=random_colour(rng, 30, 90), width=max(3, size // 30))
    return image


def draw_poster(size: int, rng: np.random.Generator) -> Image.Image:
    image = wall(size, rng)
    box = poster_frame(image, rng)
    pad = max(2, size // 40)
    inner = tuple(int(v) for v in (box[0] + pad, box[1] + pad, box[2] - pad, box[3] - size * 0.1))
    tile = gradient(64, random_colour(rng, 40, 220), random_colour(rng, 40, 220))
    tile = tile.resize((inner[2] - inner[0], inner[3] - inner[1]))
    image.paste(tile, inner[:2])
    head_and_shoulders(image, inner, rng)
    ImageDraw.Draw(image).rectangle((inner[0], inner[3] + 1, inner[2], box[3] - pad), fill=random_colour(rng, 20, 120))
    pins(image, box, rng)
    return image


def draw_photo_poster(size: int, rng: np.random.Generator) -> Image.Image:
    """A framed poster of a person's photograph hanging on a wall."""
    image = wall(size, rng) if rng.random() < 0.6 else crop_jitter(load_photo("brick"), size, rng)
    box = poster_frame(image, rng)
    w, h = box[2] - box[0] - 16, box[3] - box[1] - 16
    if rng.random() < 0.3:
        photo = face_tile(max(w, h), rng).resize((w, h))
    else:
        person = load_photo(PERSON_PHOTOS[int(rng.integers(len(PERSON_PHOTOS)))])
        photo = crop_jitter(person, max(w, h), rng, area=(0.3, 1.0)).resize((w, h))
    image.paste(photo, (box[0] + 8, box[1] + 8))
    pins(image, box, rng)
    return image


def draw_dressed_cat(size: int, rng: np.random.Generator) -> Image.Image:
    """The cat photograph wearing a drawn hat and bow tie."""
    photo = load_photo("chelsea")
    s = rng.uniform(0.85, 1.0)
    w, h = photo.size
    cw, ch = int(w * s * 0.72), int(h * s)
    x0, y0 = int(rng.integers(0, max(1, w - cw))), int(rng.integers(0, max(1, h - ch)))
    image = jitter(photo.crop((x0, y0, x0 + cw, y0 + ch)).resize((size, size), Image.BILINEAR), rng)
    draw = ImageDraw.Draw(image)
    fx = lambda x: (x * w - x0) / cw * size  # noqa: E731 - photo fraction -> canvas
    fy = lambda y: (y * h - y0) / ch * size  # noqa: E731
    hx, hy, hw = fx(0.47), fy(0.2), size * rng.uniform(0.18, 0.26)
    hat = random_colour(rng, 10, 200)
    if rng.random() < 0.5:
        draw.rectangle((hx - hw * 0.55, hy - hw * 1.1, hx + hw * 0.55, hy), fill=hat)
        draw.rectangle((hx - hw, hy - hw * 0.12, hx + hw, hy + hw * 0.05), fill=hat)
    else:
        draw.polygon([(hx - hw * 0.6, hy), (hx + hw * 0.6, hy), (hx, hy - hw * 1.4)], fill=hat)
    bx, by, bw = fx(0.45), fy(0.88), size * 0.09
    tie = random_colour(rng, 100, 250)
    draw.polygon([(bx, by), (bx - bw, by - bw * 0.6), (bx - bw, by + bw * 0.6)], fill=tie)
    draw.polygon([(bx, by), (bx + bw, by - bw * 0.6), (bx + bw, by + bw * 0.6)], fill=tie)
    return image


def draw_dressed_animal(size: int, rng: np.random.Generator) -> Image.Image:
    image = backdrop(size, rng)
    draw = ImageDraw.Draw(image)
    fur = [(120, 80, 40), (150, 150, 150), (210, 130, 50), (90, 60, 40)][int(rng.integers(4))]
    h = size * rng.uniform(0.5, 0.75)
    cx, cy, r = figure(draw, rng.uniform(0.3, 0.7) * size, size * rng.uniform(0.85, 0.97), h, rng, skin=fur,
                       cloth=random_colour(rng, 20, 230), legs=fur, face=False)
    for side in (-1, 1):
        disc(draw, cx + side * r * 0.8, cy - r * 0.8, r * 0.45, fill=fur)
    disc(draw, cx, cy + r * 0.35, r * 0.5, fill=tuple(min(255, v + 60) for v in fur))
    disc(draw, cx, cy + r * 0.15, r * 0.18, fill=(20, 20, 20))
    for side in (-1, 1):
        disc(draw, cx + side * r * 0.42, cy - r * 0.2, r * 0.12, fill=(20, 20, 20))
    return image


def draw_snowman(size: int, rng: np.random.Generator) -> Image.Image:
    image = outdoor(size, rng, ground=(200, 215, 246))
    draw = ImageDraw.Draw(image)
    snow = (200, 215, 246)
    cx, base, r = rng.uniform(0.3, 0.7) * size, size * 0.92, size * rng.uniform(0.14, 0.2)
    centres = []
    for k, f in enumerate((1.0, 0.75, 0.55)):
        y = base - r * f - sum(r * g * 2 * 0.85 for g in (1.0, 0.75, 0.55)[:k])
        disc(draw, cx, y, r * f, fill=snow)
        centres.append((y, r * f))
    y, hr = centres[2]
    draw.rectangle((cx - hr * 0.7, y - hr * 1.9, cx + hr * 0.7, y - hr * 0.8), fill=(25, 25, 30))
    draw.rectangle((cx - hr * 1.1, y - hr * 0.95, cx + hr * 1.1, y - hr * 0.75), fill=(25, 25, 30))
    draw.polygon([(cx, y), (cx + hr * 0.9, y + hr * 0.15), (cx, y + hr * 0.25)], fill=(240, 120, 30))
    for side in (-1, 1):
        disc(draw, cx + side * hr * 0.35, y - hr * 0.25, hr * 0.1, fill=(20, 20, 20))
        my, mr = centres[1]
        arm = (cx + side * mr, my, cx + side * mr * 2.1, my - mr * 0.8)
        draw.line(arm, fill=(90, 60, 30), width=max(2, size // 80))
    draw.rectangle((cx - hr, y + hr * 0.6, cx + hr, y + hr * 0.95), fill=random_colour(rng, 120, 230))
    return image


def draw_robot(size: int, rng: np.random.Generator) -> Image.Image:
    image = backdrop(size, rng)
    draw = ImageDraw.Draw(image)
    metal = random_colour(rng, 110, 180)
    dark = tuple(v - 50 for v in metal)
    for _ in range(int(rng.integers(1, 3))):
        cx, h = rng.uniform(0.25, 0.75) * size, size * rng.uniform(0.45, 0.7)
        feet = size * rng.uniform(0.85, 0.97)
        figure(draw, cx, feet, h, rng, skin=metal, cloth=dark, legs=dark, face=False, head="box")
        r = h * 0.12
        hy = feet - h + r
        glow = random_colour(rng, 0, 255)
        for side in (-1, 1):
            ex = cx + side * r * 0.5
            draw.rectangle((ex - r * 0.18, hy - r * 0.2, ex + r * 0.18, hy + r * 0.1), fill=glow)
        draw.line((cx, hy - r, cx, hy - r * 1.6), fill=dark, width=max(2, int(r * 0.15)))
        disc(draw, cx, hy - r * 1.7, r * 0.2, fill=glow)
    return image


def draw_scarecrow(size: int, rng: np.random.Generator) -> Image.Image:
    image = outdoor(size, rng, ground=(170, 150, 60))
    draw = ImageDraw.Draw(image)
    cx, top, h = rng.uniform(0.35, 0.65) * size, size * rng.uniform(0.12, 0.25), size * 0.65
    wood = (110, 75, 40)
    draw.line((cx, top, cx, top + h + size), fill=wood, width=max(3, size // 40))
    arm_y = top + h * 0.35
    draw.line((cx - h * 0.5, arm_y, cx + h * 0.5, arm_y), fill=wood, width=max(3, size // 45))
    draw.rectangle((cx - h * 0.18, arm_y - h * 0.05, cx + h * 0.18, arm_y + h * 0.4), fill=random_colour(rng, 60, 200))
    draw.rectangle((cx - h * 0.45, arm_y - h * 0.04, cx + h * 0.45, arm_y + h * 0.06), fill=random_colour(rng, 60, 200))
    r = h * 0.13
    disc(draw, cx, top + r, r, fill=(200, 170, 110))
    for side in (-1, 1):
        ex = cx + side * r * 0.4
        draw.line((ex - r * 0.15, top + r * 0.75, ex + r * 0.15, top + r * 1.05), fill=(30, 20, 10), width=2)
        draw.line((ex - r * 0.15, top + r * 1.05, ex + r * 0.15, top + r * 0.75), fill=(30, 20, 10), width=2)
        draw.line((cx + side * h * 0.45, arm_y, cx + side * h * 0.55, arm_y + h * 0.08), fill=(220, 190, 70), width=3)
    hat = [(cx - r * 1.6, top + r * 0.3), (cx + r * 1.6, top + r * 0.3), (cx, top - r * 0.9)]
    draw.polygon(hat, fill=(190, 150, 60))
    return image
