"""Deterministic corruptions of a meme: image degradations, OCR-like text noise, and their cache.

Every random choice comes from a generator seeded by (seed, image hash or sample id, condition), so the same
inputs give the same bytes on every run and machine. Corrupted images are stored as PNG files named
by a hash of the source image's sha256 and the corruption's settings: a second run reads them back.
"""
from __future__ import annotations

import hashlib
import io
import json
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from core.files import atomic_write_bytes
from Step_6.config import IMAGE_CORRUPTIONS, RobustnessConfig

# characters tesseract confuses on meme fonts, both ways
LOOKALIKES = {"O": "0", "0": "O", "I": "1", "1": "I", "L": "1", "S": "5", "5": "S", "E": "F", "B": "8", "8": "B",
              "G": "6", "Z": "2", "A": "4", "T": "7", "U": "V", "V": "U", "M": "N", "N": "M", "C": "(", "D": "0"}


def rng_for(seed: int, name: str, condition: str) -> np.random.Generator:
    """The generator of one (item, condition): `name` is the source image's sha256, or the sample id for text."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(condition.encode())])


# bump when a corruption's code changes; the Pillow version is part of the key too
CORRUPTION_CODE_VERSION = 1


def settings_of(condition: str, cfg: RobustnessConfig) -> dict:
    """The settings a condition depends on (part of the cache key)."""
    keys = {"jpeg": ["jpeg_quality"], "blur": ["blur_radius"], "noise": ["noise_std"], "downscale": [],
            "rotate": ["rotate_degrees"], "crop": ["crop_fraction"], "brightness": ["brightness"],
            "border": ["border_fraction"], "ocr_noise": ["char_confusion_rate"], "dropped_words": ["word_drop_rate"]}
    return {"condition": condition, "seed": cfg.seed, "code": CORRUPTION_CODE_VERSION, "pillow": PIL.__version__,
            **{k: getattr(cfg, k) for k in keys.get(condition, [])}}


def corrupt_image(image: Image.Image, condition: str, cfg: RobustnessConfig, rng: np.random.Generator) -> Image.Image:
    """One image degradation; returns an RGB image."""
    image = image.convert("RGB")
    w, h = image.size
    if condition == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=cfg.jpeg_quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if condition == "blur":
        return image.filter(ImageFilter.GaussianBlur(cfg.blur_radius))
    if condition == "noise":
        pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, cfg.noise_std, size=(h, w, 3))
        return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    if condition == "downscale":
        return image.resize((max(1, w // 2), max(1, h // 2)), Image.BILINEAR)
    if condition == "rotate":
        angle = cfg.rotate_degrees * (1 if rng.random() < 0.5 else -1)
        return image.rotate(angle, resample=Image.BILINEAR, expand=False, fillcolor=(255, 255, 255))
    if condition == "crop":
        cw, ch = round(w * cfg.crop_fraction), round(h * cfg.crop_fraction)
        left, top = int(rng.integers(0, cw + 1)), int(rng.integers(0, ch + 1))
        return image.crop((left, top, left + w - cw, top + h - ch))
    if condition == "brightness":
        return ImageEnhance.Brightness(image).enhance(cfg.brightness)
    if condition == "border":
        return screenshot_frame(image, cfg.border_fraction, rng)
    raise ValueError(f"unknown image corruption '{condition}'")


def screenshot_frame(image: Image.Image, fraction: float, rng: np.random.Generator) -> Image.Image:
    """The meme inside a phone screenshot: light side margins, a dark status bar with a clock and a
    handle on top, a grey bar of buttons below."""
    w, h = image.size
    side, bar = round(w * fraction), round(h * fraction * 2)
    canvas = Image.new("RGB", (w + 2 * side, h + 2 * bar), (245, 245, 245))
    canvas.paste(image, (side, bar))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, canvas.width, bar - 1), fill=(24, 24, 28))
    draw.text((side, bar // 4), f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}", fill=(230, 230, 230))
    draw.text((canvas.width // 2, bar // 4), f"@user{int(rng.integers(100, 999))}", fill=(200, 200, 200))
    draw.rectangle((0, bar + h, canvas.width, canvas.height), fill=(210, 210, 215))
    return canvas


def corrupt_text(text: str, condition: str, cfg: RobustnessConfig, rng: np.random.Generator) -> str:
    """OCR-like character confusions, or dropped words (at least one word is kept)."""
    if condition == "ocr_noise":
        chars = [LOOKALIKES.get(c.upper(), c) if rng.random() < cfg.char_confusion_rate else c for c in text]
        return "".join(chars)
    if condition == "dropped_words":
        words = text.split()
        kept = [w for w in words if rng.random() >= cfg.word_drop_rate]
        if words and not kept:
            kept = [words[int(rng.integers(0, len(words)))]]
        return " ".join(kept)
    raise ValueError(f"unknown text corruption '{condition}'")


class CorruptedImages:
    """Corrupted PNG files under `folder`, named by hash(source sha256, condition settings)."""

    def __init__(self, folder: str | Path, cfg: RobustnessConfig):
        self.folder, self.cfg = Path(folder), cfg

    def key(self, source_sha256: str, condition: str) -> str:
        spec = json.dumps(settings_of(condition, self.cfg), sort_keys=True)
        return hashlib.sha256(f"{source_sha256}|{spec}".encode()).hexdigest()[:32]

    def path(self, image_bytes: bytes, condition: str) -> Path:
        if condition not in IMAGE_CORRUPTIONS:
            raise ValueError(f"'{condition}' is not an image corruption")
        return self.folder / condition / f"{self.key(hashlib.sha256(image_bytes).hexdigest(), condition)}.png"

    def make(self, image_bytes: bytes, condition: str) -> bytes:
        """Corrupt the image now and store its PNG bytes (atomically); returns them."""
        source = hashlib.sha256(image_bytes).hexdigest()
        image = corrupt_image(Image.open(io.BytesIO(image_bytes)), condition, self.cfg,
                              rng_for(self.cfg.seed, source, condition))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        path = self.path(image_bytes, condition)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
        return buffer.getvalue()

    def get(self, image_bytes: bytes, condition: str) -> bytes:
        """The corrupted image's PNG bytes: from the folder, or made now and stored."""
        path = self.path(image_bytes, condition)
        return path.read_bytes() if path.is_file() else self.make(image_bytes, condition)
