"""Meme backgrounds: content class × image family → a size×size RGB picture.

Every content class is drawn by several families (a real photograph shipped with scikit-image or
scikit-learn, a drawn scene, a screenshot-like layout, a plain card), so no rendering style belongs
to one class. Drawn families pass through a random drawing style (flat, line art, pixel, comic,
soft paint); photographs sometimes do too.

- person: real people (photos of people, drawn figures, portraits, crowds, stick figures, a video call).
- lookalike: people-like non-people (statues, mannequins, posters of people, dressed animals, snowmen,
  robots, scarecrows).
- emblem: the invented hate emblem (a ring holding three sharp prongs) in several variants and media.
- emblem_lookalike: benign symbols that resemble it (flowers, wheels, four- and five-prong stars, clocks,
  fans, bullseyes, knots) in the same media.
- animal, food, vehicle, landscape, object: everyday content, photographed or drawn.
- abstract, screenshot, text_only: shapes and textures, app screenshots, plain cards.

Light colours are kept out of the OCR's "white glyph" range (R, G, B >= 190 with spread < 45) where a
dark outline could frame them, so the caption stays the only outlined white text.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from Step_1.synthetic import everyday, graphics, lookalikes, people
from Step_1.synthetic.drawing import crop_jitter, load_photo, paper_colour, random_colour
from Step_1.synthetic.symbols import MEDIA, draw_on_medium

CONTENTS = ("person", "lookalike", "emblem", "emblem_lookalike", "animal", "food", "vehicle", "landscape",
            "object", "abstract", "screenshot", "text_only")
FAMILIES: dict[str, tuple[str, ...]] = {
    "person": ("photo:astronaut", "photo:camera", "photo:faces", "drawn:figures", "drawn:portrait",
               "drawn:crowd", "drawn:stick", "screen:videocall"),
    "lookalike": ("drawn:statue", "drawn:mannequin", "drawn:poster", "photo:poster", "photo:dressed_cat",
                  "drawn:dressed_animal", "drawn:snowman", "drawn:robot", "drawn:scarecrow"),
    "emblem": ("emblem:classic", "emblem:curved", "emblem:hollow", "emblem:double_ring", "emblem:dotted",
               "emblem:sketch"),
    "emblem_lookalike": ("symbol:flower", "symbol:wheel", "symbol:four_star", "symbol:five_star", "symbol:clock",
                         "symbol:fan", "symbol:bullseye", "symbol:knot"),
    "animal": ("photo:chelsea", "photo:horse", "drawn:fish", "drawn:bird", "drawn:dog"),
    "food": ("photo:coffee", "drawn:pizza", "drawn:fruit", "drawn:cake", "drawn:burger"),
    "vehicle": ("photo:rocket", "photo:motorcycle", "drawn:car", "drawn:bus", "drawn:boat"),
    "landscape": ("photo:china", "photo:hubble", "photo:moon", "drawn:mountains", "drawn:city", "drawn:beach"),
    "object": ("photo:flower", "photo:coins", "photo:clock", "photo:brick", "photo:grass", "photo:gravel",
               "drawn:mugs", "drawn:lamp", "drawn:books"),
    "abstract": ("drawn:shapes", "drawn:waves", "drawn:blobs", "drawn:noise", "photo:colorwheel", "photo:cells",
                 "photo:retina"),
    "screenshot": ("screen:chat", "screen:feed", "screen:video", "screen:notes", "screen:settings"),
    "text_only": ("plain:solid", "plain:gradient", "plain:split", "plain:border"),
}


FILTERS = ("flat", "line", "pixel", "comic", "soft")
FILTER_PROBS = (0.4, 0.15, 0.15, 0.15, 0.15)  # drawn images; filtered photos pick among the last four

# family name -> drawing function (size, rng) -> image
DRAWN = {name: getattr(module, f"draw_{name}") for module, names in (
    (people, ("figures", "portrait", "crowd", "stick")),
    (lookalikes, ("statue", "mannequin", "poster", "dressed_animal", "snowman", "robot", "scarecrow")),
    (everyday, ("fish", "bird", "dog", "pizza", "fruit", "cake", "burger", "car", "bus", "boat", "mountains", "city",
                "beach", "mugs", "lamp", "books")),
    (graphics, ("shapes", "waves", "blobs", "noise"))) for name in names}
SCREENS = {"videocall": people.draw_videocall, "chat": graphics.draw_chat, "feed": graphics.draw_feed,
           "video": graphics.draw_video, "notes": graphics.draw_notes, "settings": graphics.draw_settings}
SPECIAL_PHOTOS = {"faces": people.photo_faces, "poster": lookalikes.draw_photo_poster,
                  "dressed_cat": lookalikes.draw_dressed_cat, "horse": everyday.draw_horse}


def apply_filter(image: Image.Image, name: str, rng: np.random.Generator) -> Image.Image:
    """Redraw an image in a drawing style: flat (as is), line art, pixel art, comic or soft paint."""
    if name == "flat":
        return image
    size = image.width
    if name == "line":
        edges = np.asarray(image.convert("L").filter(ImageFilter.FIND_EDGES))
        ink = np.array(random_colour(rng, 0, 80), dtype=np.uint8)
        out = np.where((edges > 24)[:, :, None], ink, np.array(paper_colour(rng), dtype=np.uint8))
        return Image.fromarray(out.astype(np.uint8)).filter(ImageFilter.SMOOTH)
    if name == "pixel":
        k = int(rng.integers(5, 11))
        small = image.resize((max(8, size // k),) * 2, Image.BILINEAR).quantize(colors=int(rng.integers(8, 24)))
        return small.convert("RGB").resize((size, size), Image.NEAREST)
    if name == "comic":
        poster = ImageOps.posterize(image, int(rng.integers(2, 4)))
        edges = np.asarray(image.convert("L").filter(ImageFilter.FIND_EDGES)) > 40
        out = np.asarray(poster).copy()
        out[edges] = (25, 25, 25)
        return Image.fromarray(out)
    if name == "soft":
        blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(size / 150)), dtype=np.float32)
        grain = rng.normal(0, 8, (size, size, 1))
        return Image.fromarray(np.clip(blurred + grain, 0, 255).astype(np.uint8))
    raise ValueError(f"unknown filter {name!r}")


def _reframe(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop (zoom) of a drawn image, so drawn content also comes in many crops."""
    if rng.random() < 0.5:
        return image
    return crop_jitter(image, image.width, rng, area=(0.5, 0.9))


def style_of(family: str, medium: str | None = None) -> str:
    """The rendering style of a family: photo, drawn, screenshot or text_only (a symbol takes its medium's)."""
    kind = family.split(":")[0]
    if kind in ("emblem", "symbol"):
        return {"graffiti": "photo", "sticker": "photo", "screen": "screenshot"}.get(medium, "drawn")
    return {"photo": "photo", "drawn": "drawn", "screen": "screenshot", "plain": "text_only"}[kind]


def make_background(what: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A size×size RGB image of a content class (one of its families at random) or of a family ('kind:name')."""
    family = what if ":" in what else FAMILIES[what][int(rng.integers(len(FAMILIES[what])))]
    return draw_scene(family, size, rng)[0]


def draw_scene(family: str, size: int, rng: np.random.Generator, photo_filter_rate: float = 0.15,
               medium: str | None = None) -> tuple[Image.Image, dict]:
    """A size×size RGB image of `family` and how it was drawn: {"style", "filter", "medium"}.

    Args:
        medium: where an emblem or symbol appears (one of MEDIA; default: drawn at random).
    """
    kind, name = family.split(":")
    if kind in ("emblem", "symbol"):
        medium = medium or MEDIA[int(rng.integers(len(MEDIA)))]
        image = draw_on_medium(family, medium, size, rng)
    elif kind == "photo":
        if name in SPECIAL_PHOTOS:
            image = SPECIAL_PHOTOS[name](size, rng)
        elif name in people.PERSON_PHOTOS:
            image = people.photo_person(name, size, rng)
        else:
            image = crop_jitter(load_photo(name), size, rng)
    elif kind == "drawn":
        image = _reframe(DRAWN[name](size, rng), rng)
    elif kind == "screen":
        image = SCREENS[name](size, rng)
    elif kind == "plain":
        image = graphics.draw_plain(name, size, rng)
    else:
        raise ValueError(f"unknown image family {family!r}")
    style = style_of(family, medium)
    filt = "flat"
    if style == "drawn":
        filt = FILTERS[rng.choice(len(FILTERS), p=FILTER_PROBS)]
    elif style == "photo" and rng.random() < photo_filter_rate:
        filt = FILTERS[1 + int(rng.integers(len(FILTERS) - 1))]
    return apply_filter(image, filt, rng), {"style": style, "filter": filt, "medium": medium}
