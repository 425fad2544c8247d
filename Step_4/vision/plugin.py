"""The vision expert plugin (registry kind 'vision'): a timm backbone or a CLIP / SigLIP image tower, frozen
(cached features + head) or fine-tuned from the shards by the default recipe (Step_4.recipes)."""
from __future__ import annotations

from pathlib import Path

from core.errors import PipelineError
from Step_4.recipes import train_from_shards
from Step_4.vision.encoder import VisionEncoder
from Step_4.vision.hf_towers import TowerVisionEncoder


def build(cfg, meta: dict) -> VisionEncoder:
    """The vision expert's encoder with its configured weights (params: vision_expert): a timm model, or the
    image tower of a CLIP / SigLIP checkpoint ('hf:<folder or hub id>')."""
    if cfg.model.startswith("hf:"):
        return TowerVisionEncoder(model=cfg.model, weights="pretrained" if cfg.weights == "bundled" else cfg.weights,
                                  projection=cfg.projection)
    if cfg.projection:
        raise PipelineError("vision_expert.projection needs a CLIP / SigLIP image tower (model: hf:<folder or hub id>)")
    return VisionEncoder(model=cfg.model, weights=cfg.weights)


def rebuild(config: dict, folder: Path | None) -> VisionEncoder:
    if config.get("kind") == "transformers":
        if folder is None:
            raise PipelineError("a transformers image tower rebuilds from its saved expert folder")
        return TowerVisionEncoder.rebuild(config, folder)
    return VisionEncoder.from_config(config)


def train(cfg, ctx):
    """Frozen or finetune from the shards (the default recipe)."""
    return train_from_shards("vision", cfg, ctx, build)


def features_learn_labels(cfg) -> bool:
    """Whether the cached features were learned from the train split's labels (fine-tuning)."""
    return cfg.mode != "frozen"
