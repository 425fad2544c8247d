"""Meme-caption OCR: isolate outlined white text, then read it with tesseract.

Meme captions are white glyphs inside a black outline. Keeping only near-white, unsaturated
pixel components whose surrounding ring is mostly dark removes white sky, walls and shirts
while keeping the letters; the result is drawn black on white, upscaled and read by tesseract.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage


@dataclass
class OcrSettings:
    """How images are cleaned and read; part of the OCR cache key."""

    preprocess: Literal["outlined_text", "none"] = "outlined_text"  # meme captions, or plain grayscale
    white_min: int = 190  # a text pixel has R, G, B >= white_min ...
    white_spread: int = 45  # ... and max - min < white_spread
    dark_max: int = 110  # an outline pixel has max(R, G, B) <= dark_max
    ring_dark_fraction: float = 0.5  # share of a component's ring that must be outline
    min_component: int = 20  # smaller white specks are noise, not glyphs
    upscale: float = 1.0
    lang: str = "eng"
    psm: int = 6

    def __post_init__(self) -> None:
        if not 0 < self.upscale <= 8:
            raise ValueError(f"upscale must be in (0, 8], got {self.upscale}")
        if not 0 <= self.psm <= 13:
            raise ValueError(f"psm must be a tesseract page segmentation mode 0-13, got {self.psm}")
        if not 0 <= self.ring_dark_fraction <= 1:
            raise ValueError("ring_dark_fraction must be in [0, 1]")

    def key(self, engine_version: str) -> str:
        """Hash of every setting plus the engine version, used with the image hash as cache key."""
        payload = repr(sorted(asdict(self).items())) + engine_version
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def engine_version() -> str:
    import pytesseract

    return f"tesseract {pytesseract.get_tesseract_version()}"


def isolate_outlined_text(rgb: np.ndarray, s: OcrSettings) -> np.ndarray:
    """Boolean mask of white components framed by a dark outline. rgb: (H, W, 3) uint8."""
    lo, hi = rgb.min(axis=2), rgb.max(axis=2)
    white = (lo >= s.white_min) & ((hi - lo) < s.white_spread)
    dark = hi <= s.dark_max
    labels, count = ndimage.label(white, structure=np.ones((3, 3), bool))
    if count == 0:
        return white
    grown = ndimage.grey_dilation(labels, size=(5, 5))
    ring = (grown > 0) & ~white
    ring_labels = grown[ring]
    ring_total = np.bincount(ring_labels, minlength=count + 1)
    ring_dark = np.bincount(ring_labels, weights=dark[ring].astype(np.float64), minlength=count + 1)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    frac = np.divide(ring_dark, ring_total, out=np.zeros(count + 1), where=ring_total > 0)
    height = rgb.shape[0]
    keep = (frac >= s.ring_dark_fraction) & (sizes >= s.min_component) & (sizes <= height * height * 0.05)
    keep[0] = False
    return keep[labels]


def preprocess(image: Image.Image, s: OcrSettings) -> Image.Image:
    """The image tesseract reads: black text on white (or plain grayscale when preprocess='none')."""
    if s.preprocess == "none":
        out = image.convert("L")
    else:
        mask = isolate_outlined_text(np.asarray(image.convert("RGB")), s)
        out = Image.fromarray(np.where(mask, 0, 255).astype(np.uint8), mode="L")
    if s.upscale != 1.0:
        out = out.resize((round(out.width * s.upscale), round(out.height * s.upscale)), Image.BICUBIC)
    return out.filter(ImageFilter.MedianFilter(3))


def read_texts(images: list[Image.Image], s: OcrSettings) -> list[tuple[str, float]]:
    """OCR RGB images in one tesseract run: per image (text as one line, mean word confidence; -1 if no words).

    Tesseract spends most of a single-image call loading its model, so a batch is read from one
    list file in one process (about 10x faster than one call per image).
    """
    import pytesseract

    if not images:
        return []
    with tempfile.TemporaryDirectory(prefix="ocr-") as tmp:
        paths = []
        for i, image in enumerate(images):
            path = os.path.join(tmp, f"{i:05d}.png")
            preprocess(image, s).save(path)
            paths.append(path)
        listing = os.path.join(tmp, "images.txt")
        with open(listing, "w", encoding="utf-8") as fh:
            fh.write("\n".join(paths) + "\n")
        env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
        cmd = [pytesseract.pytesseract.tesseract_cmd, listing, "stdout", "-l", s.lang, "--psm", str(s.psm), "tsv"]
        done = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", env=env)
    if done.returncode != 0:
        raise RuntimeError(f"tesseract failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    words: list[list[str]] = [[] for _ in images]
    confs: list[list[float]] = [[] for _ in images]
    for row in csv.DictReader(io.StringIO(done.stdout), delimiter="\t", quoting=csv.QUOTE_NONE):
        word = (row.get("text") or "").strip()
        if row["level"] == "5" and word and float(row["conf"]) >= 0:
            page = int(row["page_num"]) - 1
            words[page].append(word)
            confs[page].append(float(row["conf"]))
    return [(" ".join(w), round(float(np.mean(c)), 2) if c else -1.0) for w, c in zip(words, confs)]


def read_text(image: Image.Image, s: OcrSettings) -> tuple[str, float]:
    """OCR one RGB image (same preprocessing and engine call as the batch)."""
    return read_texts([image], s)[0]


def char_error_rate(predicted: str, gold: str) -> float:
    """Levenshtein distance / gold length, on upper-cased text with whitespace collapsed."""
    a = " ".join(predicted.upper().split())
    b = " ".join(gold.upper().split())
    if not b:
        return float(len(a) > 0)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1] / len(b)
