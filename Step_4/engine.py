"""The one training engine for every expert, MFM pretraining, every fusion head and fine-tuning.

`fit` runs AdamW (warm-up, cosine decay, clipping), scores each epoch on validation, stops after `patience` epochs
without improvement and restores the best; an `Objective` says what is minimised and scored (e.g. `classification`).
Launched on several processes (core.distributed), each rank trains on its rows of every batch under
DistributedDataParallel and validation predictions are gathered from all ranks.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core import distributed, threads
from core.errors import PipelineError
from core.progress import progress
from core.seed import set_determinism
from Step_4.config import TrainConfig
from Step_4.metrics import classification_metrics
from Step_4.runtime import resolve_precision
from Step_4.weights import average_states, keep_best, trainable_state

LossFn = Callable[[nn.Module, dict], torch.Tensor]


@dataclass
class Objective:
    """What `fit` minimises (loss(model, batch)) and how it picks the best epoch (evaluate(model)[score])."""

    loss: LossFn
    evaluate: Callable[[nn.Module], dict]
    score: str
    higher_is_better: bool = True


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    samples_per_s: float = 0.0

    def summary(self) -> dict:
        return {"best_epoch": self.best_epoch, "epochs_run": len(self.history),
                "best_val_score": round(self.best_score, 4)}


def class_weights(counts: list[int]) -> torch.Tensor:
    """Inverse-frequency weights n / (C · n_c), so every class carries the same total weight."""
    counts_t = torch.tensor(counts, dtype=torch.float32).clamp(min=1)
    return counts_t.sum() / (len(counts) * counts_t)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig, weights: torch.Tensor | None,
                        positive: int = 1, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    if cfg.loss == "ce":
        return F.cross_entropy(logits, labels)
    if cfg.loss == "weighted_ce":
        return F.cross_entropy(logits, labels, weight=weights)
    if cfg.loss == "weighted_bce":  # two classes: sigmoid(margin) is the softmax probability of the positive class
        margin = logits[:, positive] - logits[:, 1 - positive]
        return F.binary_cross_entropy_with_logits(margin, (labels == positive).to(margin.dtype), pos_weight=pos_weight)
    log_p = F.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)  # (B,)
    focal = -((1 - log_p.exp()) ** cfg.focal_gamma) * log_p
    if weights is not None:
        focal = focal * weights[labels]
    return focal.mean()


def loss_weights(cfg: TrainConfig, class_counts: list[int], positive: int) -> tuple[torch.Tensor | None,
                                                                                       torch.Tensor | None]:
    """(per-class weights, BCE pos_weight) that cfg.loss uses, from the train split's class counts."""
    binary = len(class_counts) == 2
    if cfg.loss == "weighted_bce" or (cfg.loss == "focal" and cfg.focal_alpha is not None):
        if not binary:
            raise PipelineError(f"loss {cfg.loss}{' with focal_alpha' if cfg.loss == 'focal' else ''} needs two classes; "
                                f"the taxonomy has {len(class_counts)}: use weighted_ce or focal without focal_alpha")
    if cfg.loss == "weighted_bce":
        negatives, positives = sum(class_counts) - class_counts[positive], max(1, class_counts[positive])
        return None, torch.tensor(negatives / positives)
    if cfg.loss == "focal" and cfg.focal_alpha is not None:
        weights = torch.full((2,), 1 - cfg.focal_alpha)
        weights[positive] = cfg.focal_alpha
        return weights, None
    return (class_weights(class_counts) if cfg.loss in ("weighted_ce", "focal") else None), None


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: linear 0→1 over the warmup steps, then cosine 1→0."""
    warmup = max(1, math.ceil(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))

    return factor


def to_device(batch: dict, device: str) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def labelled_only(batch: dict) -> dict:
    """The rows with a label (label >= 0) of a dict of aligned tensors and lists."""
    keep = batch["label"] >= 0
    if keep.all():
        return batch
    rows = keep.tolist()
    return {k: (v[keep] if torch.is_tensor(v) else [x for x, m in zip(v, rows) if m]) for k, v in batch.items()}


def labelled_batches(batches: Iterable[dict]) -> Iterable[dict]:
    return (b for b in map(labelled_only, batches) if len(b["label"]))


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable[dict], device: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,), probabilities (N, C)) over all batches, in eval mode."""
    model.eval()
    labels, probs = [], []
    n, me = distributed.world_size(), distributed.rank()
    for batch in batches:
        if distributed.active():  # each rank scores rows me, me + n, ... of the batch; gathered below
            batch = {k: v[me::n] for k, v in batch.items()}
        if not len(batch["label"]):
            labels.append(np.zeros(0, dtype=np.int64))
            probs.append(None)
            continue
        batch = to_device(batch, device)
        probs.append(torch.softmax(model(batch).float(), dim=-1).cpu().numpy())
        labels.append(batch["label"].cpu().numpy())
    if distributed.active():
        labels, probs = interleave(distributed.gather((labels, probs)))
    probs = [p for p in probs if p is not None]
    return np.concatenate(labels), np.concatenate(probs)


def interleave(parts: list[tuple[list, list]]) -> tuple[list, list]:
    """Every rank's (labels, probs) per batch back into the batches' row order (rank r held rows r, r+N, ...)."""
    labels, probs = [], []
    for b in range(len(parts[0][0])):
        rows = sum(len(part[0][b]) for part in parts)
        width = next(part[1][b].shape[1] for part in parts if part[1][b] is not None)
        label, prob = np.zeros(rows, dtype=np.int64), np.zeros((rows, width), dtype=np.float32)
        for r, part in enumerate(parts):
            if part[1][b] is not None:
                label[r::len(parts)], prob[r::len(parts)] = part[0][b], part[1][b]
        labels.append(label)
        probs.append(prob)
    return labels, probs


def classification(cfg: TrainConfig, class_counts: list[int], val_batches: Callable[[], Iterable[dict]], *,
                   positive: int, device: str, desc: str = "model") -> Objective:
    """Cross-entropy (weighted / plain / focal) plus the model's `auxiliary_loss()` if it has one; the best epoch
    by cfg.early_stop_metric on validation."""
    weights, pos_weight = (w.to(device) if w is not None else None for w in loss_weights(cfg, class_counts, positive))

    def loss(model: nn.Module, batch: dict) -> torch.Tensor:
        value = classification_loss(model(batch), batch["label"], cfg, weights, positive, pos_weight)
        auxiliary = getattr(distributed.unwrap(model), "auxiliary_loss", None)  # e.g. the router's balance term
        return value + auxiliary() if auxiliary is not None else value

    def evaluate(model: nn.Module) -> dict:
        labels, probs = predict(model, val_batches(), device)
        if not np.isfinite(probs).all():
            raise PipelineError(f"{desc}: the model gives non-finite outputs on validation; "
                                "lower the learning rate or raise grad_clip")
        return {k: v for k, v in classification_metrics(labels, probs, positive).items() if k != "n"}

    return Objective(loss=loss, evaluate=evaluate, score=cfg.early_stop_metric)


def fit(model: nn.Module, objective: Objective, *, train_batches: Callable[[int], Iterable[dict]], steps_per_epoch: int,
        cfg: TrainConfig, device: str, param_groups: list[dict] | None = None, live: Any = None, desc: str = "train",
        check_every: int = 50, per_rank: bool = False) -> FitResult:
    """Train `model` in place; on return it holds the weights of the best validation epoch.

    Args:
        train_batches: epoch -> iterable of training batches (reshuffled per epoch by the caller).
        steps_per_epoch: batches per epoch, for the LR schedule and the progress bar.
        param_groups: optimizer groups (e.g. no weight decay on norms); default: all trainable parameters.
        live: a dvclive.Live for per-epoch curves, or None.
        check_every: steps between checks that the loss is finite (each check waits for the device).
        per_rank: the training batches are already this rank's own (a per-rank shard stream); otherwise each
            rank takes its rows of every batch.
    """
    set_determinism(cfg.determinism, device)
    model.to(device)
    trained = distributed.wrap(model, device)  # DistributedDataParallel under torchrun
    groups = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimizer = adamw(groups, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(cfg.epochs * max(1, steps_per_epoch), cfg.warmup_fraction))
    sign = 1.0 if objective.higher_is_better else -1.0
    best_state, best_score, best_epoch, stale = None, -math.inf, -1, 0
    kept: list[tuple[float, int, dict]] = []  # the cfg.average_best best epochs: (score, epoch, weights)
    history, seen, train_time = [], 0, 0.0
    epochs = progress(range(cfg.epochs), desc=desc, unit="epoch")
    for epoch in epochs:
        started = time.perf_counter()
        loss_sum, steps, samples = train_epoch(trained, objective, train_batches(epoch), optimizer, scheduler, cfg,
                                               device, check_every, f"{desc} epoch {epoch + 1}", steps_per_epoch,
                                               per_rank)
        seen += samples
        train_time += time.perf_counter() - started
        val = objective.evaluate(model)
        score = val[objective.score]
        score = -math.inf if math.isnan(score) else sign * score
        row = {"epoch": epoch + 1, "train_loss": round(loss_sum.item() / steps, 5) if steps else float("nan"),
               "lr": optimizer.param_groups[0]["lr"], **{f"val_{k}": v for k, v in val.items()}}
        history.append(row)
        epochs.set_postfix(loss=row["train_loss"], **{f"val_{objective.score}": val[objective.score]})
        log_epoch(live, row)
        if cfg.average_best > 1:
            kept = keep_best(kept, (score, epoch + 1, model), cfg.average_best)
        if score > best_score or best_state is None:
            best_score, best_epoch, stale = score, epoch + 1, 0
            best_state = trainable_state(model)
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if len(kept) > 1:
        best_state = average_states([state for _, _, state in kept])
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    return FitResult(best_epoch=best_epoch, best_score=float(sign * best_score), history=history,
                     samples_per_s=round(seen / train_time, 1) if train_time > 0 else 0.0)


def adamw(groups: list[dict], cfg: TrainConfig, device: str) -> torch.optim.AdamW:
    """AdamW; on CUDA its fused kernel, which updates every parameter in a few launches (small heads are
    launch-bound on a GPU). The CPU keeps the default implementation, and with it the CPU's metrics."""
    fused = str(device).startswith("cuda") or None
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def train_epoch(model: nn.Module, objective: Objective, batches: Iterable[dict], optimizer, scheduler, cfg: TrainConfig,
                device: str, check_every: int, desc: str, steps_per_epoch: int,
                per_rank: bool = False) -> tuple[torch.Tensor, int, int]:
    """One pass over the training batches; returns (summed loss, steps, samples)."""
    model.train()
    loss_sum, steps, samples = torch.zeros((), dtype=torch.float64, device=device), 0, 0
    for batch in progress(batches, total=steps_per_epoch, desc=desc, unit="batch", leave=False, mininterval=2.0,
                          disable=steps_per_epoch < 100 or not distributed.is_main()):
        threads.refresh()  # other stages started or ended on this machine: share the cores again
        batch = batch if per_rank else distributed.local_rows(batch)  # several processes: this rank's rows
        if batch is None:
            continue
        batch = to_device(batch, device)
        with autocast(cfg.precision, device):
            loss = objective.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach().double()
        steps += 1
        samples += len(batch["label"]) if "label" in batch else len(next(iter(batch.values())))
        if steps % check_every == 0:
            _check_finite(loss_sum, desc)
    _check_finite(loss_sum, desc)
    return loss_sum, steps, samples


def autocast(precision: str, device: str):
    """bf16 autocast for the forward and loss when the precision (auto: bf16 on CUDA) asks for it; weights,
    gradients and the optimizer stay fp32."""
    bf16 = resolve_precision(precision, device) == "bf16"
    return torch.autocast("cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16, enabled=bf16)


def log_epoch(live: Any, row: dict) -> None:
    """One epoch's row as dvclive curves (train/loss, val/auroc, ...), when logging."""
    if live is None:
        return
    for key, value in row.items():
        if key != "epoch":
            live.log_metric(key.replace("val_", "val/").replace("train_", "train/"), value)
    live.next_step()


def _check_finite(loss_sum: torch.Tensor, desc: str) -> None:
    if distributed.active():  # every rank decides together, so none is left waiting in the next step
        loss_sum = loss_sum.clone()
        torch.distributed.all_reduce(loss_sum)
    if not torch.isfinite(loss_sum):
        raise PipelineError(f"{desc}: training diverged (non-finite loss); lower the learning rate or raise grad_clip")
