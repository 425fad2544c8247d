"""Feature passes over the shards: every split in one pass of one pool of loader workers, through the frozen
encoder's feature cache (content-keyed) where there is one, and split across ranks under several processes."""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core import distributed
from Step_3.reader import ShardReader
from Step_4 import runtime
from Step_4.context import ExpertContext
from Step_4.expert import Expert
from Step_4.features.batches import pooled_batches
from Step_4.features.cache import FeatureCache, fingerprint
from Step_4.features.tensors import extract_by_split


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
    def find(cls, encoder, reader: ShardReader, splits: list[str], store) -> CacheGaps:
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
