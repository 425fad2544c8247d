"""Open any supported image safely and normalise it to 8-bit RGB, or say clearly why not."""
from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000


class BadImage(Exception):
    """The file cannot be used as an image; the message is the reason."""


@dataclass
class ImageInfo:
    sha256: str
    width: int
    height: int
    mode: str
    format: str
    needs_conversion: bool  # True when the stored bytes are not plain RGB/L JPEG/PNG in upright orientation


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise BadImage("empty file (0 bytes)")
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > max_pixels:
                raise BadImage(f"{image.width}x{image.height} exceeds the pixel limit of {max_pixels}")
            image.load()
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own message names 2 x max_pixels for the error case; name the configured limit.
        size = re.search(r"\((\d+) pixels\)", str(err))
        raise BadImage(f"{size.group(1) if size else 'more'} pixels exceeds the pixel limit of {max_pixels}") from None
    except UnidentifiedImageError:
        raise BadImage("not an image file (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImage(f"corrupt or truncated image: {err}") from None
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: applies EXIF orientation, flattens alpha on white, rescales 16-bit grey."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        image = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, Image.Image, ImageInfo]:
    """Read a file: its bytes, the upright RGB image, and its facts. Raises BadImage with the reason."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise BadImage("file not found") from None
    except IsADirectoryError:
        raise BadImage("is a folder, not an image file") from None
    except PermissionError:
        raise BadImage("permission denied") from None
    raw = _open(data, max_pixels)
    orientation = raw.getexif().get(0x0112, 1) if hasattr(raw, "getexif") else 1
    rgb = to_rgb(raw)
    plain = raw.format in ("JPEG", "PNG") and raw.mode in ("RGB", "L") and orientation in (None, 1)
    info = ImageInfo(sha256=hashlib.sha256(data).hexdigest(), width=rgb.width, height=rgb.height,
                     mode=raw.mode, format=raw.format or "unknown", needs_conversion=not plain)
    return data, rgb, info
