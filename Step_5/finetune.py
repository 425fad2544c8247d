"""End-to-end fine-tuning of a fusion model from the shards: the experts' top layers train with the
fusion head (partial unfreezing). Meant for a GPU; the default pipeline trains fusion heads on
cached embeddings instead. Enabled by fusion.finetune.enabled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.params import check
from Step_3.reader import make_loader
from Step_3.tabular import TabularEncoder
from Step_4.expert import Expert
from Step_4.inputs import make_inputs
from Step_4.training import TrainConfig, fit, predict
from Step_5.data import drop_modalities


@dataclass
class FinetuneConfig:
    enabled: bool = False
    text_layers: int = 1  # top transformer layers of the text expert to train (-1: all, 0: frozen)
    vision_blocks: int = 1  # last backbone stages of the vision expert to train (-1: all, 0: frozen)
    tabular: bool = True  # train the whole tabular expert
    epochs: int = 3
    batch_size: int = 32
    lr: float = 0.0001
    num_workers: int = 0

    def __post_init__(self) -> None:
        check(self.text_layers >= -1 and self.vision_blocks >= -1, "text_layers / vision_blocks must be >= -1")
        check(self.epochs >= 1 and self.batch_size >= 1 and self.lr > 0, "epochs, batch_size, lr must be positive")


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
        """The head's own regulariser (e.g. the gated router's balance term), if it has one."""
        return self.head.auxiliary_loss() if hasattr(self.head, "auxiliary_loss") else 0.0


def multimodal_inputs(experts: dict[str, Expert], modalities: list[str], *, train: bool, tabular: TabularEncoder):
    """(transform, collate) producing every modality's inputs plus the presence mask (B, M)."""
    parts = {m: make_inputs(m, experts[m].encoder, train=train, tabular=tabular) for m in modalities}

    def transform(sample: dict) -> dict:
        out = {}
        for t, _ in parts.values():
            out.update(t(sample))
        return out

    def collate(rows: list[dict]) -> dict:
        batch = {}
        for m, (_, c) in parts.items():
            batch.update(c(rows))
        present = {"text": batch["text_present"], "tabular": batch["tabular_present"],
                   "vision": torch.ones(len(rows), dtype=torch.bool)}
        batch["mask"] = torch.stack([present[m] for m in modalities], dim=1)
        return batch

    return transform, collate


def unfreeze(experts: dict[str, Expert], cfg: FinetuneConfig) -> None:
    for m, expert in experts.items():
        if m == "text":
            expert.encoder.freeze(cfg.text_layers)
        elif m == "vision":
            expert.encoder.freeze(cfg.vision_blocks)
        else:
            for p in expert.encoder.parameters():
                p.requires_grad = cfg.tabular
        for p in expert.head.parameters():
            p.requires_grad = True


def finetune(model: EndToEndFusion, cfg: FinetuneConfig, train_cfg: TrainConfig, *, shard_dir: Path, meta: dict,
             modality_dropout: float, device: str, live=None):
    """Fit the whole model from the shards.

    Returns (FitResult, {split: (labels, probs)} for val and test, {modality: (labels, probs)} on test
    with that modality removed).
    """
    tabular = TabularEncoder(meta["tabular"])
    experts = dict(model.experts.items())
    unfreeze(experts, cfg)
    images = "vision" in model.modalities
    train_tf, train_collate = multimodal_inputs(experts, model.modalities, train=True, tabular=tabular)
    eval_tf, eval_collate = multimodal_inputs(experts, model.modalities, train=False, tabular=tabular)

    def loader(split, train, epoch=0):
        tf, col = (train_tf, train_collate) if train else (eval_tf, eval_collate)
        return make_loader(shard_dir, split, transform=tf, collate=col, batch_size=cfg.batch_size, shuffle=train,
                           seed=train_cfg.seed, epoch=epoch, num_workers=cfg.num_workers, decode_images=images)

    def labelled(batches, drop: bool, epoch: int = 0, remove: str | None = None):
        gen = torch.Generator().manual_seed(train_cfg.seed * 7919 + epoch)
        for batch in batches:
            keep = batch["label"] >= 0
            if not keep.any():
                continue
            batch = {k: (v[keep] if torch.is_tensor(v) else [x for x, k2 in zip(v, keep.tolist()) if k2])
                     for k, v in batch.items()}
            if drop:
                batch["mask"] = drop_modalities(batch["mask"], modality_dropout, gen)
            if remove is not None:
                batch["mask"][:, model.modalities.index(remove)] = False
            yield batch

    tuned = TrainConfig(**{**train_cfg.__dict__, "epochs": cfg.epochs, "lr": cfg.lr, "batch_size": cfg.batch_size,
                           "patience": max(1, cfg.epochs)})
    counts = [meta["counts"]["train"].get(c, 0) for c in meta["classes"]]
    result = fit(model, train_batches=lambda e: labelled(loader("train", True, e), True, e),
                 val_batches=lambda: labelled(loader("val", False), False),
                 steps_per_epoch=math.ceil(sum(counts) / cfg.batch_size), cfg=tuned, class_counts=counts,
                 device=device, positive=meta["positive_index"], live=live, desc="fusion finetune")
    scores = {s: predict(model, labelled(loader(s, False), False), device)[:2] for s in ("val", "test")}
    removal = {m: predict(model, labelled(loader("test", False), False, remove=m), device)[:2] for m in model.modalities}
    return result, scores, removal
