"""How an expert is trained from the shards: 'frozen' (encode once, cache, fit the head) or 'finetune'
(the encoder's top layer groups train with the head, then features are cached). Both run on the engine."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from Step_3.reader import ShardReader, class_counts
from Step_3.splits import SPLITS
from Step_4.embeddings import extract, tensor_batches
from Step_4.engine import FitResult, classification, fit, labelled_batches, labelled_only
from Step_4.expert import Expert
from Step_4.inputs import shard_batches


@dataclass
class ExpertContext:
    """What a recipe needs besides the expert's own params section."""

    reader: ShardReader
    device: str
    live: Any = None
    mfm_dir: Path | None = None  # tabular: the MFM-pretrained encoder

    @property
    def meta(self) -> dict:
        return self.reader.meta


@dataclass
class TrainedExpert:
    expert: Expert
    data: dict  # split -> embeddings (ids, features, logits, labels, present)
    result: FitResult
    embed_samples_per_s: float
    extra: dict = field(default_factory=dict)


def split_loader(expert: Expert, ctx: ExpertContext, split: str, **options):
    return shard_batches(ctx.reader, {expert.modality: expert.encoder}, split, device=ctx.device, **options)


def embed_splits(expert: Expert, cfg, ctx: ExpertContext) -> dict:
    """Features and logits of every split, in one pass each."""
    data = {}
    for split in SPLITS:
        loader = split_loader(expert, ctx, split, train=False, batch_size=cfg.embed_batch_size,
                              num_workers=cfg.num_workers)
        data[split] = extract(expert, loader, ctx.device, total=len(loader), desc=f"{expert.modality} features {split}")
    return data


def train_frozen(expert: Expert, cfg, ctx: ExpertContext) -> TrainedExpert:
    """Cache encoder features once, then fit the head on them."""
    expert.encoder.freeze(0)
    data = embed_splits(expert, cfg, ctx)
    train_set, val_set = ({"label": data[s]["labels"], "features": data[s]["features"]} for s in ("train", "val"))
    train_set, val_set, t = labelled_only(train_set), labelled_only(val_set), cfg.train
    objective = classification(t, class_counts(ctx.meta), lambda: tensor_batches(val_set, 512, shuffle=False),
                               positive=ctx.meta["positive_index"], device=ctx.device, desc=f"{expert.modality} head")
    result = fit(expert, objective, cfg=t, device=ctx.device, live=ctx.live, desc=f"{expert.modality} head",
                 train_batches=lambda e: tensor_batches(train_set, t.batch_size, shuffle=True, seed=t.seed, epoch=e),
                 steps_per_epoch=math.ceil(len(train_set["label"]) / t.batch_size))
    with torch.no_grad():
        expert.eval()
        for split in SPLITS:
            data[split]["logits"] = expert.forward_head(data[split]["features"].to(ctx.device)).float().cpu()
    return TrainedExpert(expert, data, result, data["train"]["samples_per_s"])


def train_finetune(expert: Expert, cfg, ctx: ExpertContext) -> TrainedExpert:
    """Fit the encoder's top `cfg.trainable` layer groups with the head from the shards, then cache features."""
    expert.encoder.freeze(cfg.trainable)
    t = cfg.train
    train = split_loader(expert, ctx, "train", train=True, batch_size=t.batch_size, seed=t.seed,
                         num_workers=cfg.num_workers)
    val = split_loader(expert, ctx, "val", train=False, batch_size=cfg.embed_batch_size, num_workers=cfg.num_workers)
    objective = classification(t, class_counts(ctx.meta), lambda: labelled_batches(val),
                               positive=ctx.meta["positive_index"], device=ctx.device, desc=f"{expert.modality} finetune")
    result = fit(expert, objective, cfg=t, device=ctx.device, live=ctx.live, desc=f"{expert.modality} finetune",
                 train_batches=lambda e: labelled_batches(train), steps_per_epoch=len(train))
    data = embed_splits(expert, cfg, ctx)
    return TrainedExpert(expert, data, result, data["train"]["samples_per_s"])


def train_from_shards(expert: Expert, cfg, ctx: ExpertContext) -> TrainedExpert:
    """The default recipe: by `cfg.mode`, frozen or finetune."""
    return train_frozen(expert, cfg, ctx) if cfg.mode == "frozen" else train_finetune(expert, cfg, ctx)
