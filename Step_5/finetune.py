"""End-to-end fine-tuning of a fusion model from the shards: the experts' top layer groups train with the
fusion head (partial unfreezing). Meant for a GPU; the default pipeline trains fusion heads on cached
embeddings instead. Enabled by fusion.finetune.enabled.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from Step_3.reader import ShardReader, class_counts
from Step_3.splits import EVALUATED
from Step_4.config import TrainConfig
from Step_4.engine import FitResult, classification, fit, labelled_batches, to_device
from Step_4.expert import Expert
from Step_4.features.batches import presence_mask, shard_batches
from Step_5.config import FinetuneConfig
from Step_5.data import drop_modalities


class EndToEndFusion(nn.Module):
    """Experts (raw inputs → features, logits) feeding a fusion head; batch holds every modality's inputs."""

    def __init__(self, *, experts: dict[str, Expert], head: nn.Module, modalities: list[str]):
        super().__init__()
        self.experts = nn.ModuleDict(experts)
        self.head = head
        self.modalities = modalities

    def fusion_inputs(self, batch: dict) -> dict:
        out = {"mask": batch["mask"]}
        for m in self.modalities:
            features = self.experts[m].forward_features(batch)
            out[m] = features
            out[f"{m}_logits"] = self.experts[m].forward_head(features)
        return out

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.fusion_inputs(batch))

    def auxiliary_loss(self):
        """The head's own regulariser (e.g. the gated router's balance term) plus the experts' (e.g. a DACT text
        expert's depth penalty)."""
        head = self.head.auxiliary_loss() if hasattr(self.head, "auxiliary_loss") else 0.0
        return head + sum(expert.auxiliary_loss() for expert in self.experts.values())


def unfreeze(model: EndToEndFusion, cfg: FinetuneConfig) -> None:
    for m, expert in model.experts.items():
        expert.encoder.freeze(cfg.trainable(m))
        expert.head.requires_grad_(True)


def with_mask(batches: Iterable[dict], modalities: list[str], *, dropout: float = 0.0, seed: int = 0,
              remove: str | None = None) -> Iterable[dict]:
    """The batches with their presence mask (B, M); optional modality dropout or one modality removed."""
    gen = torch.Generator().manual_seed(seed)
    for batch in batches:
        batch["mask"] = drop_modalities(presence_mask(batch, modalities), dropout, gen)
        if remove is not None:
            batch["mask"][:, modalities.index(remove)] = False
        yield batch


@torch.no_grad()
def probs_in_order(model: nn.Module, batches: Iterable[dict], ids: list[str], device: str) -> np.ndarray:
    """Probabilities (N, C) of every sample, in the order of `ids` (the id-sorted order of the embeddings)."""
    model.eval()
    by_id = {}
    for batch in batches:
        probs = torch.softmax(model(to_device(batch, device)).float(), dim=-1).cpu().numpy()
        by_id.update(zip(batch["id"], probs))
    return np.stack([by_id[i] for i in ids])


def finetune(model: EndToEndFusion, cfg: FinetuneConfig, train_cfg: TrainConfig, *, reader: ShardReader,
             ids: dict[str, list[str]], modality_dropout: float, device: str, live=None) -> tuple[FitResult, list, dict]:
    """Fit the whole model from the shards.

    Returns (FitResult, [{split: probabilities}] for the evaluated splits, {modality: probabilities on test_seen
    with that modality removed}); rows follow `ids` (split -> ids in the order of the embeddings).
    """
    meta, modalities = reader.meta, model.modalities
    unfreeze(model, cfg)
    encoders = {m: model.experts[m].encoder for m in modalities}
    loaders = {split: shard_batches(reader, encoders, split, train=split == "train", batch_size=cfg.batch_size,
                                    seed=train_cfg.seed, num_workers=cfg.workers(device), device=device)
               for split in ids}
    train, val = loaders["train"], loaders["val"]
    tuned = dataclasses.replace(train_cfg, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                                patience=max(1, cfg.epochs))
    objective = classification(tuned, class_counts(meta), lambda: with_mask(labelled_batches(val), modalities),
                               positive=meta["positive_index"], device=device, desc="fusion finetune")
    result = fit(model, objective, cfg=tuned, device=device, live=live, desc="fusion finetune",
                 train_batches=lambda e: with_mask(labelled_batches(train), modalities, dropout=modality_dropout,
                                                   seed=train_cfg.seed * 7919 + e),
                 steps_per_epoch=len(train), per_rank=train.per_rank)
    scores = {s: probs_in_order(model, with_mask(loaders[s], modalities), ids[s], device)
              for s in EVALUATED if s in loaders}
    removal = {m: probs_in_order(model, with_mask(loaders["test_seen"], modalities, remove=m), ids["test_seen"], device)
               for m in modalities}
    return result, [scores], removal
