"""The deployed model behind the service: checks one request's inputs, reads text by OCR, scores batches."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.errors import PipelineError
from core.files import read_json
from Step_2.images import BadImage, _open, to_rgb
from Step_2.tesseract import read_texts
from Step_5.predict import Predictor
from Step_7.config import EnqueueConfig, ServeConfig

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
               "BMP": "image/bmp", "TIFF": "image/tiff"}


class BadInput(Exception):
    """A request the service cannot answer as asked; `status` is the HTTP status (4xx for the client's input,
    503 while the model loads, 500 for a failure on our side)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Meme:
    """One meme of a request, checked and decoded."""

    image: Image.Image
    data: bytes
    media_type: str
    text: str | None = None
    text_source: str = "given"
    tabular: dict = field(default_factory=dict)
    series: np.ndarray | None = None


def resolve_model(cfg: ServeConfig) -> Path:
    """The fusion folder to serve: `cfg.model`, or for 'best' the best_fusion named by the comparison file."""
    if cfg.model != "best":
        folder = Path(cfg.model)
    else:
        if not Path(cfg.comparison).is_file():
            raise PipelineError(f"{cfg.comparison} not found: run `make run` (dvc repro) first, or serve a given "
                                "model with --model models/mm_fusion/<method>")
        folder = Path(cfg.models_dir) / read_json(cfg.comparison)["best_fusion"].removeprefix("fusion_")
    if not (folder / "fusion.json").is_file():
        raise PipelineError(f"{folder} holds no fusion model (fusion.json): run `make run` (dvc repro) first")
    return folder


def decode(data: bytes, max_pixels: int) -> tuple[Image.Image, str]:
    """Upright RGB image and media type from uploaded bytes; BadInput 413 over the pixel limit, 415 otherwise."""
    try:
        raw = _open(data, max_pixels)
        return to_rgb(raw), MEDIA_TYPES.get(raw.format or "", "application/octet-stream")
    except BadImage as err:
        status = 413 if "pixel limit" in str(err) else 415
        raise BadInput(status, f"image: {err}") from None


class Scorer:
    """Loads the deployed fusion model (with calibration, operating point and memory) and scores checked memes."""

    def __init__(self, cfg: ServeConfig):
        self.folder = resolve_model(cfg)
        memory = Path(cfg.memory) if cfg.memory and (Path(cfg.memory) / "memory.safetensors").is_file() else None
        models = self.folder.resolve().parent.parent  # models/ of models/mm_fusion/<method>: its experts beside it
        experts = models if any(models.glob("*_expert/expert.json")) else None  # else the paths fusion.json records
        self.predictor = Predictor(self.folder, experts, calibration="auto", operating_point=cfg.operating_point or None,
                                   memory=memory)
        self.max_pixels = cfg.max_pixels
        info = self.predictor.info
        self.name = f"fusion_{info['method']}"
        self.positive = self.predictor.classes[info.get("positive_index", len(self.predictor.classes) - 1)]
        self.threshold = self.predictor.threshold

    def describe(self) -> dict:
        p = self.predictor
        return {"model": self.name, "folder": str(self.folder), "classes": p.classes, "modalities": p.modalities,
                "positive": self.positive, "operating_point": p.operating_point, "threshold": self.threshold,
                "calibrated": p.temperature is not None, "memory": p.memory is not None}

    def check(self, data: bytes, text: str | None, tabular: str | None, series: str | None) -> Meme:
        """Decode and check one meme's inputs; BadInput names the field that is wrong."""
        image, media_type = decode(data, self.max_pixels)
        return Meme(image=image, data=data, media_type=media_type, text=text,
                    tabular=self.parse_tabular(tabular), series=self.parse_series(series))

    def parse_tabular(self, value: str | None) -> dict:
        if value in (None, ""):
            return {}
        try:
            row = json.loads(value)
        except json.JSONDecodeError as err:
            raise BadInput(422, f"tabular: not valid JSON ({err.msg} at char {err.pos}); send an object such as "
                                '{"prior_reports": 2}') from None
        if not isinstance(row, dict):
            raise BadInput(422, "tabular: must be a JSON object of field: value")
        try:
            self.predictor.check_tabular(row)
        except PipelineError as err:
            raise BadInput(422, str(err)) from None
        return row

    def parse_series(self, value: str | None) -> np.ndarray | None:
        if value in (None, ""):
            return None
        if not value.lstrip().startswith("["):
            raise BadInput(422, "series: send the engagement series inline as a JSON list of hours (each a list of "
                                "counts per channel, or null); file paths are not read by the service")
        try:
            return self.predictor.read_series(value)
        except PipelineError as err:
            raise BadInput(422, str(err)) from None

    def read_text(self, memes: list[Meme]) -> list[Meme]:
        """OCR every meme that came without text, in one tesseract run (Step 2's exact settings)."""
        todo = [m for m in memes if m.text is None]
        for meme, (text, _) in zip(todo, read_texts([m.image for m in todo], self.predictor.ocr)):
            meme.text, meme.text_source = text, "ocr"
        return memes

    def score(self, memes: list[Meme]) -> list[dict[str, Any]]:
        """One result per meme: the fields of `predict --format jsonl` (text, probabilities, calibrated,
        flagged, gates, experts, neighbours with a memory)."""
        samples = [{"id": str(i), "image": m.image, "text": m.text or "", "series": m.series,
                    "meta": {"label": -1, "tabular": m.tabular}} for i, m in enumerate(memes)]
        results = self.predictor.classify(samples)
        for meme, result in zip(memes, results):
            result.update(text=meme.text, text_source=meme.text_source)
        return results

    def wants_review(self, result: dict, rule: EnqueueConfig) -> bool:
        """The enqueue rule: flagged at the operating point, or within `rule.uncertain_margin` of its threshold."""
        threshold = self.threshold if self.threshold is not None else 0.5
        close = abs(self.probability(result) - threshold) <= rule.uncertain_margin
        return close or (rule.flagged and bool(result.get("flagged")))

    def review_fields(self, meme: Meme, result: dict) -> dict:
        """What the review page shows of a scored meme."""
        memory = result.get("memory") or {}
        return {"probability": self.probability(result), "threshold": self.threshold,
                "flagged": result.get("flagged"), "label": result["label"], "gates": result.get("gates", {}),
                "experts": result.get("experts", {}), "neighbours": memory.get("neighbours", []),
                "text_source": meme.text_source, "model": self.name, "request_id": result.get("request_id")}

    def probability(self, result: dict) -> float:
        """The calibrated positive-class probability of a result (raw without calibration)."""
        found = (result.get("calibrated") or result["probabilities"])[self.positive]
        return float(found) if math.isfinite(found) else 0.0
