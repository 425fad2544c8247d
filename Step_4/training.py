"""The one training loop shared by every expert and every fusion head.

AdamW, linear warmup then cosine decay, class-weighted cross-entropy or focal loss, gradient
clipping, early stopping on a validation metric with patience, best weights restored at the end.
A model takes a batch dict and returns logits (B, C); batches carry a 'label' tensor (B,).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from core.errors import PipelineError
from core.params import check
from Step_4.metrics import classification_metrics


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    loss: Literal["weighted_ce", "ce", "focal"] = "weighted_ce"
    focal_gamma: float = 2.0
    grad_clip: float = 1.0
    early_stop_metric: Literal["macro_f1", "auroc"] = "auroc"
    patience: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, "weight_decay must be >= 0")
        check(0 <= self.warmup_fraction < 1, "warmup_fraction must be in [0, 1)")
        check(self.grad_clip >= 0, "grad_clip must be >= 0 (0 disables clipping)")
        check(self.patience >= 1, f"patience must be >= 1, got {self.patience}")


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    samples_per_s: float = 0.0


def class_weights(counts: list[int]) -> torch.Tensor:
    """Inverse-frequency weights n / (C · n_c), so every class carries the same total weight."""
    counts_t = torch.tensor(counts, dtype=torch.float32).clamp(min=1)
    return counts_t.sum() / (len(counts) * counts_t)


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig, weights: torch.Tensor | None) -> torch.Tensor:
    if cfg.loss == "ce":
        return F.cross_entropy(logits, labels)
    if cfg.loss == "weighted_ce":
        return F.cross_entropy(logits, labels, weight=weights)
    log_p = F.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)  # (B,)
    focal = -((1 - log_p.exp()) ** cfg.focal_gamma) * log_p
    if weights is not None:
        focal = focal * weights[labels]
    return focal.mean()


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: linear 0→1 over the warmup steps, then cosine 1→0."""
    warmup = max(1, math.ceil(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def to_device(batch: dict, device: str) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable[dict], device: str) -> tuple[np.ndarray, np.ndarray, list]:
    """(labels (N,), probabilities (N, C), ids) over all batches, in eval mode."""
    model.eval()
    labels, probs, ids = [], [], []
    for batch in batches:
        batch = to_device(batch, device)
        logits = model(batch)
        probs.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        labels.append(batch["label"].cpu().numpy())
        ids += list(batch.get("id", []))
    return np.concatenate(labels), np.concatenate(probs), ids


def fit(model: nn.Module, *, train_batches: Callable[[int], Iterable[dict]], val_batches: Callable[[], Iterable[dict]],
        steps_per_epoch: int, cfg: TrainConfig, class_counts: list[int], device: str, positive: int = 1,
        param_groups: list[dict] | None = None, live: Any = None, desc: str = "train") -> FitResult:
    """Train `model` in place; on return it holds the weights of the best validation epoch.

    Args:
        train_batches: epoch -> iterable of training batches (reshuffled per epoch by the caller).
        val_batches: () -> iterable of validation batches.
        param_groups: optimizer groups (e.g. no weight decay on norms); default: all trainable parameters.
        live: a dvclive.Live to log per-epoch curves to, or None.
    """
    model.to(device)
    groups = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * max(1, steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, cfg.warmup_fraction))
    weights = class_weights(class_counts).to(device) if cfg.loss in ("weighted_ce", "focal") else None
    best_state, best_score, best_epoch, stale = None, -math.inf, -1, 0
    history, seen, train_time = [], 0, 0.0
    epochs = tqdm(range(cfg.epochs), desc=desc, unit="epoch")
    for epoch in epochs:
        model.train()
        started, losses = time.perf_counter(), []
        for batch in tqdm(train_batches(epoch), total=steps_per_epoch, desc=f"epoch {epoch + 1}", unit="batch",
                          leave=False, mininterval=2.0, disable=steps_per_epoch < 100):
            batch = to_device(batch, device)
            loss = loss_fn(model(batch), batch["label"], cfg, weights)
            if hasattr(model, "auxiliary_loss"):  # e.g. the gated router's load-balancing term
                loss = loss + model.auxiliary_loss()
            if not torch.isfinite(loss):
                raise PipelineError(f"{desc}: training diverged (loss {loss.item()}) at epoch {epoch + 1}; "
                                    "lower the learning rate or raise grad_clip")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            seen += len(batch["label"])
        train_time += time.perf_counter() - started
        labels, probs, _ = predict(model, val_batches(), device)
        if not np.isfinite(probs).all():
            raise PipelineError(f"{desc}: the model gives non-finite outputs on validation after epoch {epoch + 1}; "
                                "lower the learning rate or raise grad_clip")
        val = classification_metrics(labels, probs, positive)
        score = val[cfg.early_stop_metric]
        score = -math.inf if math.isnan(score) else score
        row = {"epoch": epoch + 1, "train_loss": round(float(np.mean(losses)) if losses else float("nan"), 5),
               "lr": optimizer.param_groups[0]["lr"], **{f"val_{k}": v for k, v in val.items() if k != "n"}}
        history.append(row)
        epochs.set_postfix(loss=row["train_loss"], **{f"val_{cfg.early_stop_metric}": score})
        if live is not None:
            for key, value in row.items():
                if key != "epoch":
                    live.log_metric(key.replace("val_", "val/").replace("train_", "train/"), value)
            live.next_step()
        if score > best_score or best_state is None:
            best_score, best_epoch, stale = score, epoch + 1, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(best_epoch=best_epoch, best_score=float(best_score), history=history,
                     samples_per_s=round(seen / train_time, 1) if train_time > 0 else 0.0)
