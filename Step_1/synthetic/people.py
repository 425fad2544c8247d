"""Real people (photographs and drawn) and people-like non-people (statues, mannequins, posters, ...)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from Step_1.synthetic.drawing import (SKIN, backdrop, crop_jitter, disc, gradient, jitter, lfw_faces, load_photo,
                                      outdoor, paper_colour, pins, poster_frame, random_colour, wall)

PERSON_PHOTOS = ("astronaut", "camera")


def _face_tile(size: int, rng: np.random.Generator) -> Image.Image:
    faces = lfw_faces()
    grey = Image.fromarray((faces[int(rng.integers(len(faces)))] * 255).astype(np.uint8)).resize((size, size),
                                                                                                Image.BICUBIC)
    dark, light = random_colour(rng, 0, 80), random_colour(rng, 150, 240)
    return ImageOps.colorize(grey, dark, light)


def photo_faces(size: int, rng: np.random.Generator) -> Image.Image:
    """One face close-up, or a grid of faces (a collage of real people)."""
    n = int(rng.choice([1, 1, 2, 3]))
    if n == 1:
        return _face_tile(size, rng)
    image = Image.new("RGB", (size, size), random_colour(rng, 20, 120))
    cell = size // n
    gap = max(2, size // 80)
    for i in range(n):
        for j in range(n):
            image.paste(_face_tile(cell - gap, rng), (j * cell + gap // 2, i * cell + gap // 2))
    return image


def photo_person(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    return crop_jitter(load_photo(name), size, rng, area=(0.3, 1.0))


def _body(draw: ImageDraw.ImageDraw, cx: float, feet: float, height: float, rng: np.random.Generator, *,
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


def _portrait(image: Image.Image, box: tuple[float, float, float, float], rng: np.random.Generator,
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
        _body(draw, rng.uniform(0.15, 0.85) * size, rng.uniform(0.82, 0.98) * size, size * scale, rng,
              skin=c["skin"], cloth=c["cloth"], legs=c["legs"], hair=c["hair"], arms_up=rng.random() < 0.3)
    return image


def draw_portrait(size: int, rng: np.random.Generator) -> Image.Image:
    image = backdrop(size, rng)
    _portrait(image, (0, size * rng.uniform(0.0, 0.15), size, size), rng)
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
            _portrait(image, (x, top, x + w * 1.1, top + w * 1.25), rng)
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
            _portrait(image, box, rng)
            bar = max(2.0, size * 0.04)
            draw.rectangle((box[0] + 1, box[3] - bar, box[0] + cell * 0.4, box[3] - 1), fill=(40, 40, 45))
    y = size * 0.9
    for k, colour in enumerate(((90, 90, 95), (90, 90, 95), (200, 40, 40), (90, 90, 95))):
        disc(draw, size * (0.3 + 0.13 * k), y, size * 0.035, fill=colour)
    return image


def draw_statue(size: int, rng: np.random.Generator) -> Image.Image:
    image = wall(size, rng) if rng.random() < 0.5 else outdoor(size, rng)
    draw = ImageDraw.Draw(image)
    stone = [(150, 150, 145), (120, 100, 70), (90, 130, 110), (170, 160, 140)][int(rng.integers(4))]
    shade = tuple(max(0, v - 35) for v in stone)
    cx, h = rng.uniform(0.3, 0.7) * size, size * rng.uniform(0.5, 0.7)
    base = size * rng.uniform(0.78, 0.9)
    draw.rectangle((cx - h * 0.3, base, cx + h * 0.3, size), fill=shade)
    draw.rectangle((cx - h * 0.35, base - h * 0.04, cx + h * 0.35, base), fill=stone)
    _body(draw, cx, base - h * 0.04, h, rng, skin=stone, cloth=shade, legs=stone, face=False, hair=shade,
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
        _body(draw, cx, feet, h, rng, skin=shell, cloth=random_colour(rng, 30, 220) if rng.random() < 0.6 else shell,
              legs=shell, face=False, head="round")
    for k in range(int(rng.integers(2, 5))):  # shop-window reflections
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
    _portrait(image, inner, rng)
    ImageDraw.Draw(image).rectangle((inner[0], inner[3] + 1, inner[2], box[3] - pad), fill=random_colour(rng, 20, 120))
    pins(image, box, rng)
    return image


def draw_photo_poster(size: int, rng: np.random.Generator) -> Image.Image:
    """A framed poster of a person's photograph hanging on a wall."""
    image = wall(size, rng) if rng.random() < 0.6 else crop_jitter(load_photo("brick"), size, rng)
    box = poster_frame(image, rng)
    w, h = box[2] - box[0] - 16, box[3] - box[1] - 16
    if rng.random() < 0.3:
        photo = _face_tile(max(w, h), rng).resize((w, h))
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
    cx, cy, r = _body(draw, rng.uniform(0.3, 0.7) * size, size * rng.uniform(0.85, 0.97), h, rng, skin=fur,
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
        _body(draw, cx, feet, h, rng, skin=metal, cloth=dark, legs=dark, face=False, head="box")
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
