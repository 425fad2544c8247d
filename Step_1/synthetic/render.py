"""Draw meme captions: upper-case Anton, white fill, black outline, top and bottom bands."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@functools.cache
def anton_path() -> Path:
    """The Anton TTF shipped by the `fontpkg-anton` package (the usual Impact substitute)."""
    import fontpkg

    return Path(fontpkg.path("Anton"))


@functools.lru_cache(maxsize=128)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: float, draw: ImageDraw.ImageDraw) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(trial, font=font) <= max_width:
            lines[-1] = trial
        else:
            lines.append(word)
    return lines


def _layout(text: str, size: int, max_width: float, max_lines: int, draw,
            path: str) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """Largest font, from `size` down, at which the text wraps into at most max_lines fitting lines."""
    while True:
        font = _font(path, size)
        lines = _wrap(text, font, max_width, draw)
        fits = all(draw.textlength(line, font=font) <= max_width for line in lines)
        if (fits and len(lines) <= max_lines) or size <= 12:
            return font, lines
        size -= 2


def draw_caption(image: Image.Image, top: str, bottom: str, rng: np.random.Generator,
                 font_path: str | Path | None = None, upper: bool = True,
                 size_range: tuple[float, float] = (0.085, 0.13)) -> Image.Image:
    """Return a copy of `image` with the top and bottom captions drawn on it.

    Args:
        font_path: a TrueType font (default: Anton).
        upper: upper-case the text (meme style).
        size_range: starting font size as a fraction of the image height (shrunk until the text fits).
    """
    image = image.copy()
    draw = ImageDraw.Draw(image)
    path = str(font_path or anton_path())
    width, height = image.size
    start = int(height * rng.uniform(*size_range))
    margin = height * 0.03
    for text, at_top in ((top, True), (bottom, False)):
        if not text:
            continue
        font, lines = _layout(text.upper() if upper else text, start, width * 0.92, 3, draw, path)
        stroke = max(2, font.size // 11)
        line_h = font.size * 1.12
        block = line_h * len(lines)
        y = margin if at_top else height - margin - block
        for line in lines:
            x = (width - draw.textlength(line, font=font)) / 2
            draw.text((x, y), line, font=font, fill=(255, 255, 255), stroke_width=stroke, stroke_fill=(0, 0, 0))
            y += line_h
    return image
