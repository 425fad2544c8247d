"""How an expert is trained from the shards, once per seed: 'frozen' (encode once, cache, fit the head) or
'finetune' (the encoder's top layer groups train with the head, then features are cached). Both run on
the engine; the first seed's model is the one saved and whose embeddings later stages read."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from core import distributed
from core.seed import seed_everything
from Step_3.reader import ShardReader, class_counts, filled_splits
from Step_4.config import TrainConfig
from Step_4.embeddings import extract, extract_by_split, resident, tensor_batches
from Step_4.engine import FitResult, classification, fit, labelled_batches, labelled_only
from Step_4.expert import Expert
from Step_4.feature_cache import FeatureCache, fingerprint
from Step_4.inputs import pooled_batches, shard_batches
from Step_4 import runtime
from Step_4.registry import create_expert
from Step_4.report import softmax


@dataclass
class ExpertContext:
    """What a recipe needs besides the expert's own params section."""

    reader: ShardReader
    device: str
    live: Any = None
    mfm_dir: Path | None = None  # tabular: the MFM-pretrained encoder
    feature_cache: Path | None = None  # frozen encoders: features by content hash (data/feature_cache/<modality>)

    @property
    def meta(self) -> dict:
        return self.reader.meta

    @property
    def splits(self) -> list[str]:
        return filled_splits(self.meta)


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
    splits['val'], class weights from the rows it trains on), then extract every split given; returns (id-sorted
    features and logits per split, the fit). The recipe of experts that train end to end on small inputs."""
    train, val = (resident({k: v for k, v in labelled_only(splits[s]).items() if k != "id"}, device)
                  for s in ("train", "val"))
    counts = torch.bincount(train["label"], minlength=len(meta["classes"])).tolist()
    objective = classification(t, counts, lambda: tensor_batches(val, 1024, shuffle=False),
                               positive=meta["positive_index"], device=device, desc=desc)
    result = fit(expert, objective, cfg=t, device=device, live=live, desc=desc,
                 train_batches=lambda e: tensor_batches(train, t.batch_size, shuffle=True, seed=t.seed, epoch=e),
                 steps_per_epoch=math.ceil(len(train["label"]) / t.batch_size), param_groups=param_groups)
    data = {s: extract(expert, tensor_batches(splits[s], 1024, shuffle=False), device, desc=f"{desc} features {s}")
            for s in splits}
    return data, result


def extract_split(expert: Expert, cfg, ctx: ExpertContext, split: str, select=None, total: int | None = None) -> dict:
    """`extract` over one split (the samples `select` accepts); see extract_splits."""
    return extract_splits(expert, cfg, ctx, [split], select, total)[split]


def extract_splits(expert: Expert, cfg, ctx: ExpertContext, splits: list[str], select=None,
                   total: int | None = None) -> dict[str, dict]:
    """`extract` over several splits in one pass of one pool of loader workers (they start once, not once per
    split): {split: outputs}. Under several processes each rank encodes its share of the samples (by a hash of
    the sample id) and the shares are gathered and merged, id-sorted."""
    if distributed.active():
        rank, world, keep = distributed.rank(), distributed.world_size(), select
        select = lambda raw: owner(raw["__key__"], world) == rank and (keep is None or keep(raw))  # noqa: E731
    options = {"select": select} if select is not None else {}
    # e.g. token counts: batches of alike texts pad little. Only on the CPU, where the encoder is the bottleneck:
    # on a GPU the loader is, and sorting (which holds each worker's samples back) halved text throughput
    order = getattr(expert.encoder, "batch_order", None)
    if order is not None and not str(ctx.device).startswith("cuda"):
        options["order_by"] = lambda rows: order([row[expert.modality] for row in rows])
    loader = pooled_batches(ctx.reader, {expert.modality: expert.encoder}, splits, batch_size=cfg.embed_batch_size,
                            num_workers=cfg.num_workers, device=ctx.device, **options)
    with runtime.inference(expert.encoder, cfg.runtime, cfg.precision, ctx.device):
        data = extract_by_split(expert, loader, ctx.device, splits, total=total or len(loader),
                                desc=f"{expert.modality} features {' '.join(splits)}")
    if distributed.active():
        parts = distributed.gather(data)
        data = {split: merge_extracted([part[split] for part in parts]) for split in splits}
    return data


def owner(sample_id: str, world: int) -> int:
    """The rank that encodes a sample: stable across runs and machines."""
    return int(hashlib.sha1(sample_id.encode()).hexdigest()[:8], 16) % world


def merge_extracted(parts: list[dict]) -> dict:
    """Every rank's `extract` output as one, id-sorted (the ranks ran side by side: their rates add up)."""
    ids = [i for part in parts for i in part["ids"]]
    order = torch.tensor(sorted(range(len(ids)), key=ids.__getitem__), dtype=torch.long)
    merged = {"ids": [ids[i] for i in order.tolist()],
              "samples_per_s": round(sum(part["samples_per_s"] for part in parts), 1)}
    first = next((part for part in parts if part["ids"]), parts[0])
    for key in first:
        if torch.is_tensor(first[key]):
            merged[key] = torch.cat([part[key] for part in parts if part["ids"]] or [first[key]])[order]
    return merged


def embed_splits(expert: Expert, cfg, ctx: ExpertContext, cache: FeatureCache | None = None) -> dict:
    """Features and logits of every split, in one pass; with a cache, only samples not in it are encoded."""
    with runtime.inference(expert.encoder, cfg.runtime, cfg.precision, ctx.device):  # exported once for every split
        if cache is None:
            return extract_splits(expert, cfg, ctx, ctx.splits)
        data = embed_cached(expert, cfg, ctx, ctx.splits, cache)
    cache.save()
    return data


def content_index(encoder, reader: ShardReader, split: str) -> list[tuple[str, str, int, int]]:
    """(id, content key, label, true label) of every sample of a split, id-sorted like `extract`, from the raw tar
    members (nothing decoded or encoded)."""
    index = []
    for raw in reader.samples(split, raw=True):
        meta = json.loads(raw["json"])
        index.append((raw["__key__"], encoder.content_key(raw), int(meta["label"]), int(meta.get("true_label", -1))))
    return sorted(index)


@dataclass
class CacheGaps:
    """What a content-keyed store lacks for some splits: per split the content index (`content_index`), sample id
    -> content key, and the ids whose content the store does not hold."""

    index: dict[str, list]
    key_of: dict[str, dict[str, str]]
    missing: dict[str, set[str]]

    @classmethod
    def find(cls, encoder, reader: ShardReader, splits: list[str], store) -> "CacheGaps":
        index = {split: content_index(encoder, reader, split) for split in splits}
        return cls(index, {split: {i: key for i, key, _, _ in rows} for split, rows in index.items()},
                   {split: {i for i, key, _, _ in rows if key not in store} for split, rows in index.items()})

    def splits_to_encode(self) -> list[str]:
        return [split for split, ids in self.missing.items() if ids]

    def select(self, reader: ShardReader) -> Callable[[dict], bool]:
        """A loader `select` that keeps the raw samples missing in their own split."""
        split_of = {url: split for split in self.splits_to_encode() for url in reader.urls(split)}
        return lambda raw: raw["__key__"] in self.missing[split_of[raw["__url__"]]]

    def batches(self, batch_size: int) -> int:
        return sum(math.ceil(len(ids) / batch_size) for ids in self.missing.values())


def embed_cached(expert: Expert, cfg, ctx: ExpertContext, splits: list[str], cache: FeatureCache) -> dict:
    """Each split's features from the cache by content key; the encoder runs, in one pass over the splits, only
    on the samples missing there."""
    gaps = CacheGaps.find(expert.encoder, ctx.reader, splits, cache)
    index, key_of, missing, todo = gaps.index, gaps.key_of, gaps.missing, gaps.splits_to_encode()
    fresh = {}
    if todo:
        fresh = extract_splits(expert, cfg, ctx, todo, select=gaps.select(ctx.reader),
                               total=gaps.batches(cfg.embed_batch_size))
        for split in todo:
            new = fresh[split]
            cache.add([key_of[split][i] for i in new["ids"]], new["features"], new["present"])
    data = {}
    for split in splits:
        ids, keys, labels, truth = (list(column) for column in zip(*index[split]))
        features, present = cache.get(keys)
        with torch.no_grad():
            expert.eval().to(ctx.device)
            logits = torch.cat([expert.forward_head(chunk.to(ctx.device)).float().cpu()
                                for chunk in features.split(cfg.embed_batch_size)])
        data[split] = {"ids": ids, "features": features, "logits": logits, "labels": torch.tensor(labels),
                       "true_labels": torch.tensor(truth), "present": present, "embedded": len(missing[split]),
                       "samples_per_s": fresh[split]["samples_per_s"] if split in fresh else 0.0}
    return data


def fit_head(expert: Expert, data: dict, t: TrainConfig, ctx: ExpertContext, live) -> tuple[dict, FitResult]:
    """Fit the head on cached features; returns the data with this head's logits, and the fit."""
    train_set, val_set = (resident(labelled_only({"label": data[s]["labels"], "features": data[s]["features"]}),
                                   ctx.device) for s in ("train", "val"))
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


def train_from_shards(kind: str, cfg, ctx: ExpertContext) -> TrainedExpert:
    """The default recipe, once per seed in cfg.train.seeds: frozen (features computed once, shared by the
    seeds, read from the feature cache where the content was embedded before) or finetune (a fresh
    pretrained encoder per seed). 'auto' loader sizes are resolved for the device first."""
    cfg = cfg.for_device(ctx.device)
    features: dict = {}

    def run_one(seed: int) -> Run:
        seed_everything(seed)
        expert = create_expert(kind, cfg, ctx.meta)
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


def loader_facts(cfg) -> dict:
    """The extraction batch and loader workers a run used (what 'auto' became), for its report."""
    return {"embed_batch_size": cfg.embed_batch_size, "num_workers": cfg.num_workers}


def open_cache(expert: Expert, ctx: ExpertContext, cfg) -> FeatureCache | None:
    """The frozen encoder's feature cache, when the stage has one and the encoder says what its content is; the
    runtime and precision that make the features are part of its fingerprint."""
    if ctx.feature_cache is None or not hasattr(expert.encoder, "content_key"):
        return None
    return FeatureCache(ctx.feature_cache,
                        fingerprint(expert.encoder, runtime.plan(expert.encoder, cfg.runtime, cfg.precision, ctx.device)))
