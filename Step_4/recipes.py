"""How an expert is trained from the shards, once per seed: 'frozen' (encode once, cache, fit the head) or
'finetune' (the encoder's top layer groups train with the head, then features are cached). Both run on
the engine; the first seed's model is the one saved and whose embeddings later stages read."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from core.seed import seed_everything
from Step_3.reader import class_counts
from Step_3.splits import SELECTION
from Step_4.config import TrainConfig
from Step_4.context import ExpertContext
from Step_4.engine import FitResult, classification, fit, labelled_batches, labelled_only
from Step_4.expert import Expert, make_expert
from Step_4.features.batches import shard_batches
from Step_4.features.passes import embed_splits, loader_facts, open_cache
from Step_4.features.tensors import extract, resident, stack_rows, tensor_batches
from Step_4.scores import softmax


@dataclass
class TrainedExpert:
    expert: Expert  # the first seed's model: saved, and its embeddings cached
    data: dict  # split -> the first seed's embeddings (ids, features, logits, labels, true_labels, present)
    result: FitResult  # the first seed's training
    runs: list[dict[str, np.ndarray]]  # per seed: split -> probabilities (N, C), rows as in data[split]
    embed_samples_per_s: float
    extra: dict = field(default_factory=dict)


Run = tuple[Expert, dict, FitResult]


def over_seeds(seeds: list[int], run_one: Callable[[int], Run]) -> TrainedExpert:
    """One training per seed; keeps the first seed's model and every seed's scores."""
    done = [run_one(seed) for seed in seeds]
    expert, data, result = done[0]
    runs = [{s: softmax(d[s]["logits"]) for s in d} for _, d, _ in done]
    return TrainedExpert(expert, data, result, runs, overall_rate(data))


def overall_rate(data: dict) -> float:
    """Samples embedded per second over every split (splits served from a feature cache count for nothing;
    0.0 when every sample came from it)."""
    embedded = {s: d.get("embedded", len(d["ids"])) for s, d in data.items() if d.get("samples_per_s", 0) > 0}
    seconds = sum(n / data[s]["samples_per_s"] for s, n in embedded.items())
    return round(sum(embedded.values()) / seconds, 1) if seconds > 0 else 0.0


def fit_on_tensors(expert: Expert, t: TrainConfig, splits: dict, meta: dict, device: str, live, desc: str,
                   param_groups: list[dict] | None = None) -> tuple[dict, FitResult]:
    """Train a whole expert on the labelled rows of splits['train'] held as tensors (early stopping on
    splits['val'] and splits['val_unseen'] pooled, class weights from the rows it trains on), then extract every split given; returns (id-sorted
    features and logits per split, the fit). The recipe of experts that train end to end on small inputs."""
    rows = {s: {k: v for k, v in labelled_only(splits[s]).items() if k != "id"} for s in splits}
    train = resident(rows["train"], device)
    val = resident(stack_rows([rows[s] for s in SELECTION if s in rows]), device)
    counts = torch.bincount(train["label"], minlength=len(meta["classes"])).tolist()
    objective = classification(t, counts, lambda: tensor_batches(val, 1024, shuffle=False),
                               positive=meta["positive_index"], device=device, desc=desc)
    result = fit(expert, objective, cfg=t, device=device, live=live, desc=desc,
                 train_batches=lambda e: tensor_batches(train, t.batch_size, shuffle=True, seed=t.seed, epoch=e),
                 steps_per_epoch=math.ceil(len(train["label"]) / t.batch_size), param_groups=param_groups)
    data = {s: extract(expert, tensor_batches(splits[s], 1024, shuffle=False), device, desc=f"{desc} features {s}")
            for s in splits}
    return data, result


def fit_head(expert: Expert, data: dict, t: TrainConfig, ctx: ExpertContext, live) -> tuple[dict, FitResult]:
    """Fit the head on cached features (early stopping on val and val_unseen pooled); returns the data with this
    head's logits, and the fit."""
    rows = {s: labelled_only({"label": d["labels"], "features": d["features"]}) for s, d in data.items()}
    train_set = resident(rows["train"], ctx.device)
    val_set = resident(stack_rows([rows[s] for s in SELECTION if s in rows]), ctx.device)
    objective = classification(t, class_counts(ctx.meta), lambda: tensor_batches(val_set, 512, shuffle=False),
                               positive=ctx.meta["positive_index"], device=ctx.device, desc=f"{expert.modality} head")
    result = fit(expert, objective, cfg=t, device=ctx.device, live=live, desc=f"{expert.modality} head",
                 train_batches=lambda e: tensor_batches(train_set, t.batch_size, shuffle=True, seed=t.seed, epoch=e),
                 steps_per_epoch=math.ceil(len(train_set["label"]) / t.batch_size))
    with torch.no_grad():
        expert.eval()
        logits = {s: expert.forward_head(d["features"].to(ctx.device)).float().cpu() for s, d in data.items()}
    return {s: {**d, "logits": logits[s]} for s, d in data.items()}, result


def train_finetune(expert: Expert, cfg, t: TrainConfig, ctx: ExpertContext, live,
                   lr_of: dict[str, float] | None = None) -> tuple[dict, FitResult]:
    """Fit the encoder's top `cfg.trainable` layer groups with the head from the shards, then cache features.
    lr_of: parameter-name prefix -> its own learning rate (the rest train at t.lr)."""
    expert.encoder.freeze(cfg.trainable)
    train = shard_batches(ctx.reader, {expert.modality: expert.encoder}, "train", train=True, batch_size=t.batch_size,
                          seed=t.seed, num_workers=cfg.num_workers, device=ctx.device)
    val = shard_batches(ctx.reader, {expert.modality: expert.encoder}, "val", train=False,
                        batch_size=cfg.embed_batch_size, num_workers=cfg.num_workers, device=ctx.device)
    objective = classification(t, class_counts(ctx.meta), lambda: labelled_batches(val),
                               positive=ctx.meta["positive_index"], device=ctx.device, desc=f"{expert.modality} finetune")
    result = fit(expert, objective, cfg=t, device=ctx.device, live=live, desc=f"{expert.modality} finetune",
                 train_batches=lambda e: labelled_batches(train), steps_per_epoch=len(train), per_rank=train.per_rank,
                 param_groups=param_groups(expert, lr_of or {}))
    return embed_splits(expert, cfg, ctx), result


def param_groups(model: torch.nn.Module, lr_of: dict[str, float]) -> list[dict] | None:
    """Optimizer groups of the trainable parameters: those under a prefix in lr_of at its rate, the rest at the
    optimizer's default; None when lr_of is empty."""
    if not lr_of:
        return None
    groups: dict = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            prefix = next((k for k in lr_of if name.startswith(k)), None)
            groups.setdefault(prefix, []).append(p)
    return [{"params": ps, **({"lr": lr_of[k]} if k else {})} for k, ps in groups.items()]


def train_from_shards(kind: str, cfg, ctx: ExpertContext, build: Callable) -> TrainedExpert:
    """The default recipe, once per seed in cfg.train.seeds: frozen (features computed once, shared by the
    seeds, read from the feature cache where the content was embedded before) or finetune (a fresh
    pretrained encoder per seed). 'auto' loader sizes are resolved for the device first."""
    cfg = cfg.for_device(ctx.device)
    features: dict = {}

    def run_one(seed: int) -> Run:
        seed_everything(seed)
        expert = make_expert(kind, build(cfg, ctx.meta), cfg, ctx.meta)
        live = ctx.live if seed == cfg.train.seeds[0] else None
        if cfg.mode == "finetune":
            return expert, *train_finetune(expert, cfg, cfg.train.for_seed(seed), ctx, live)
        expert.encoder.freeze(0)
        if not features:  # a frozen encoder gives the same features whatever the seed
            features.update(embed_splits(expert, cfg, ctx, open_cache(expert, ctx, cfg)))
        # encoding draws random numbers (the loader's seed) and a cache hit does not: reseed so that training
        # is the same whether the features were encoded now or read from the feature cache
        seed_everything(seed)
        return expert, *fit_head(expert, features, cfg.train.for_seed(seed), ctx, live)

    trained = over_seeds(cfg.train.seeds, run_one)
    trained.extra["loader"] = loader_facts(cfg)
    if "embedded" in trained.data["train"]:
        trained.extra["feature_cache"] = {s: {"embedded": d["embedded"], "from_cache": len(d["ids"]) - d["embedded"]}
                                          for s, d in trained.data.items()}
    return trained
