"""Training on the generated dataset: expert embedding and head-training throughput, a fusion epoch on cached
embeddings vs re-encoding, and feature extraction through the feature cache after 1 % new memes."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from bench.common import detected_device, timed
from bench.dataset import ensure_shards, frozen_experts, train_loader
from Step_2.images import DEFAULT_MAX_PIXELS
from Step_3.reader import ShardReader
from Step_3.shard import write_shards


def bench_experts(data: dict, results: dict) -> None:
    """Embedding extraction and head-training throughput for text and vision on the detected device."""
    from Step_4.config import TrainConfig
    from Step_4.engine import classification, fit
    from Step_4.features.tensors import extract, tensor_batches

    experts, device = frozen_experts(data), detected_device()
    for m in ("text", "vision"):
        emb = extract(experts[m], train_loader(data, {m: experts[m]}, device), device)
        results["throughput"][f"{m}_embed_samples_per_s_{device}"] = emb["samples_per_s"]
        head = experts[m].head
        for p in head.parameters():
            p.requires_grad = True
        train = {"features": emb["features"], "label": emb["labels"]}
        cfg = TrainConfig(epochs=3)
        objective = classification(cfg, [1, 1], lambda: tensor_batches(train, 512, shuffle=False), positive=1,
                                   device=device)
        res = fit(experts[m], objective, train_batches=lambda e: tensor_batches(train, 64, shuffle=True, epoch=e),
                  steps_per_epoch=math.ceil(len(train["label"]) / 64), cfg=cfg, device=device, desc=f"bench {m} head")
        results["throughput"][f"{m}_head_train_samples_per_s_{device}"] = res.samples_per_s


def bench_fusion(data: dict, results: dict) -> None:
    """One training epoch of the gated fusion head: cached embeddings vs re-encoding every batch."""
    from Step_4.features.batches import presence_mask
    from Step_4.features.tensors import extract, tensor_batches
    from Step_5.finetune import EndToEndFusion
    from Step_5.models import FusionDims, GatedFusion

    experts, device = frozen_experts(data), detected_device()
    modalities = ["text", "vision", "tabular"]
    cached = {}
    for m in modalities:
        emb = extract(experts[m], train_loader(data, {m: experts[m]}, device), device)
        cached[m], cached[f"{m}_logits"], cached["label"] = emb["features"], emb["logits"], emb["labels"]
        cached["mask"] = torch.ones(len(emb["labels"]), 3, dtype=torch.bool)
    dims = FusionDims(inputs={m: cached[m].shape[1] for m in modalities}, n_classes=2)

    def epoch(batches, model):
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        model.train()
        for batch in batches:
            batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            loss = torch.nn.functional.cross_entropy(model(batch), batch["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()

    head = GatedFusion(dims=dims).to(device)
    _, t_cached = timed(lambda: epoch(tensor_batches(cached, 64, shuffle=True), head))
    e2e = EndToEndFusion(experts=experts, head=GatedFusion(dims=dims), modalities=modalities).to(device)
    loader = train_loader(data, experts, device)
    _, t_encode = timed(lambda: epoch(({**b, "mask": presence_mask(b, modalities)} for b in loader), e2e))
    results["ratios"]["fusion_cached_speedup"] = round(t_encode / t_cached, 1)
    results["throughput"]["fusion_epoch_cached_samples_per_s"] = len(cached["label"]) / t_cached
    results["throughput"]["fusion_epoch_reencode_samples_per_s"] = len(cached["label"]) / t_encode


def _shard_subset(data: dict, out: Path, keep: list[int]) -> ShardReader:
    """Shards (and a meta.json) of the rows at `keep`, for the incremental-embedding case."""
    from Step_3.shard import shard_pattern

    rows, labels, splits = ([data[k][i] for i in keep] for k in ("rows", "labels", "splits"))
    sizes = write_shards(rows, labels, splits, out, data["shard_cfg"], DEFAULT_MAX_PIXELS)
    meta = {**data["meta"], "files": {s: shard_pattern(s, len(n)) for s, n in sizes.items()}, "shard_sizes": sizes,
            "sizes": {s: sum(n) for s, n in sizes.items()}}
    return ShardReader(out, meta)


def bench_embed_cache(data: dict, results: dict) -> None:
    """Text + vision features of every split: a full run without cache vs adding 1 % new memes to a dataset
    whose features are cached (content hashing, cache reads, the encoder on the new memes only)."""
    from types import SimpleNamespace

    from Step_4.context import ExpertContext
    from Step_4.features.cache import FeatureCache, fingerprint
    from Step_4.features.passes import embed_splits

    ensure_shards(data)
    experts, device, work = frozen_experts(data), detected_device(), data["work"]
    n = len(data["rows"])
    new = set(range(0, n, 100))  # 1 % of the memes arrive later
    older = _shard_subset(data, work / "shards_99", [i for i in range(n) if i not in new])
    everything = _shard_subset(data, work / "shards_100", list(range(n)))
    # PyTorch here: this case measures the cache; an exported runtime's one-off compile would blur the ratio
    cfg = SimpleNamespace(embed_batch_size=64, num_workers=0, runtime="torch", precision="fp32")

    def embed(reader, cache_dir):
        for m in ("text", "vision"):
            cache = FeatureCache(cache_dir / m, fingerprint(experts[m].encoder)) if cache_dir else None
            embed_splits(experts[m], cfg, ExpertContext(reader=reader, device=device), cache)

    _, full = timed(lambda: embed(everything, None))
    embed(older, work / "feature_cache")
    _, incremental = timed(lambda: embed(everything, work / "feature_cache"))
    _, unchanged = timed(lambda: embed(everything, work / "feature_cache"))
    results["ratios"]["embed_cache_add_1pct_speedup"] = round(full / incremental, 1)
    results["ratios"]["embed_cache_unchanged_speedup"] = round(full / unchanged, 1)
    results["throughput"]["embed_text_vision_samples_per_s_uncached"] = n / full
