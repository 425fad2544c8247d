"""The text expert plugin (registry kind 'text'): a Hugging Face transformer (bundled MiniLM by default) or a
CLIP / SigLIP text tower, frozen or fine-tuned by the default recipe, or with adaptive depth (DACT)."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from Step_4.recipes import train_from_shards
from Step_4.text.dact_encoder import build_dact, rebuild_dact
from Step_4.text.dact_training import full_depth_plots, train_dact
from Step_4.text.encoder import TextEncoder


def build(cfg, meta: dict) -> nn.Module:
    """The text expert's encoder with pretrained weights (params: text_expert); with adaptive: dact, wrapped with
    DACT units (Step_4.text.dact_encoder)."""
    encoder = TextEncoder(model=cfg.model, pooling=cfg.pooling, max_length=cfg.max_length, layer_path=cfg.layer_path,
                          projection=cfg.projection)
    if cfg.adaptive == "dact":
        return build_dact(encoder, cfg, meta)
    return encoder


def rebuild(config: dict, folder: Path | None) -> nn.Module:
    """The architecture from a saved expert: tokenizer and config from <folder>/encoder when given."""
    source = str(folder / "encoder") if folder is not None else config["model"]
    encoder = TextEncoder(model=source, pooling=config["pooling"], max_length=config["max_length"], pretrained=False,
                          layer_path=config.get("layer_path", "auto"), projection=config.get("projection", False))
    encoder.model_name = config["model"]
    if config.get("adaptive") == "dact":
        return rebuild_dact(encoder, config)
    return encoder


def train(cfg, ctx):
    """adaptive: dact has its own recipe (Step_4.text.dact_training); otherwise frozen / finetune from the shards."""
    if cfg.adaptive == "dact":
        return train_dact(cfg, ctx, build)
    trained = train_from_shards("text", cfg, ctx, build)
    trained.extra["plots"] = full_depth_plots(trained, ctx.meta["positive_index"])
    return trained


def features_learn_labels(cfg) -> bool:
    """Whether the cached features were learned from the train split's labels (fine-tuning or DACT)."""
    return cfg.mode != "frozen" or cfg.adaptive != "none"
