"""Text and image towers of aligned dual encoders (CLIP, SigLIP) from transformers, with their projections.

A dual checkpoint (e.g. openai/clip-vit-large-patch14, a local folder saved by CLIPModel) or a single
tower's config both load: the text expert takes the text tower, the vision expert the image tower. With
`projection: true` the features are the tower's projected embeddings (the space in which CLIP compares
image and text), L2-normalised; otherwise the tower's pooled hidden state.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from core.errors import PipelineError

TOWERS = {"clip": ("CLIPTextModelWithProjection", "CLIPVisionModelWithProjection"),
          "siglip": ("SiglipTextModel", "SiglipVisionModel")}
TOWER_TYPES = {"clip_text_model": "clip", "clip_vision_model": "clip", "siglip_text_model": "siglip",
               "siglip_vision_model": "siglip"}
IMAGE_STATS = {"clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
               "siglip": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))}


def family(config) -> str | None:
    """'clip' or 'siglip' for a dual or single-tower config of those families, else None."""
    kind = getattr(config, "model_type", None)
    return kind if kind in TOWERS else TOWER_TYPES.get(kind)


def tower_config(config, side: str):
    """The config of one tower ('text' or 'vision'); a dual CLIP config lends it its projection size."""
    if config.model_type not in TOWERS:
        return config
    tower = getattr(config, f"{side}_config")
    if hasattr(config, "projection_dim"):
        tower.projection_dim = config.projection_dim
    return tower


def load_tower(source: str, config, side: str, pretrained: bool) -> nn.Module:
    """The text or vision tower model of `source` (weights from it when pretrained, else random)."""
    import transformers

    fam = family(config)
    cls = getattr(transformers, TOWERS[fam][side == "vision"])
    tower = tower_config(config, side)
    if not pretrained:
        return cls(tower)
    try:
        return cls.from_pretrained(source, config=tower)
    except (OSError, RuntimeError, ValueError) as err:
        raise PipelineError(f"cannot load the {side} tower of {source!r}: {err}") from None


def run_tower(model: nn.Module, fam: str, side: str, projection: bool, **inputs) -> torch.Tensor:
    """(B, D) features of a tower: its projected embedding, L2-normalised, or (projection off) the pooled
    hidden state before the projection. SigLIP's pooled output is its embedding (no separate projection)."""
    if fam == "clip" and not projection:  # the *WithProjection models return no pooler_output of their own
        return getattr(model, f"{side}_model")(**inputs).pooler_output
    output = model(**inputs)
    if fam == "clip":
        embeds = output.text_embeds if side == "text" else output.image_embeds
    else:
        embeds = output.pooler_output
    return nn.functional.normalize(embeds, dim=-1) if projection else embeds


def tower_dim(model: nn.Module, fam: str, projection: bool) -> int:
    if fam == "clip":
        return int(model.config.projection_dim) if projection else int(model.config.hidden_size)
    return int(getattr(model.config, "projection_size", None) or model.config.hidden_size)


def image_data_config(source: str, config, fam: str) -> dict:
    """Input size and normalisation: the checkpoint's preprocessor_config.json when it has one, else the
    family's defaults at the tower's image size."""
    mean, std = IMAGE_STATS[fam]
    size = int(getattr(tower_config(config, "vision"), "image_size", 224))
    processor = Path(source) / "preprocessor_config.json"
    if processor.is_file():
        data = json.loads(processor.read_text(encoding="utf-8"))
        mean, std = data.get("image_mean", mean), data.get("image_std", std)
        crop = data.get("crop_size") or data.get("size") or {}
        size = int(crop.get("height") or crop.get("shortest_edge") or size) if isinstance(crop, dict) else int(crop)
    return {"input_size": (3, size, size), "interpolation": "bicubic", "mean": tuple(mean), "std": tuple(std),
            "crop_pct": 1.0, "crop_mode": "center"}

