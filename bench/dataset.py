"""The generated benchmark dataset (bench.run --count memes): prepared memes and their manifest, then on demand
their OCR, shards and a set of frozen experts (text, vision, tabular) over them."""
from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import torch

from core.files import read_jsonl
from core.params import build
from Step_1.config import PrepareConfig
from Step_1.prepare import prepare
from Step_2.cache import OcrCache
from Step_2.images import DEFAULT_MAX_PIXELS
from Step_2.ocr import OcrConfig, build_manifest, run_ocr
from Step_3.reader import ShardReader
from Step_3.shard import ShardConfig, build_samples, write_shards
from Step_3.splits import SPLITS, assign_splits, link_groups
from Step_3.tabular import TabularSchema, fit_schema
from Step_3.taxonomy import TaxonomyConfig, build_taxonomy


def build_dataset(work: Path, count: int) -> dict:
    """Generate `count` memes, build the manifest; shards are written by bench_shards / on demand."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cfg = build(PrepareConfig, {"workers": os.cpu_count() or 1, "sources": [{
        "name": "synthetic", "kind": "synthetic", "label_map": {"hateful": "abuse_hate", "benign": "benign"},
        "options": {"count": count, "seed": 99}}]}, where="bench")
    prepare(cfg, work / "prepared")
    records = read_jsonl(work / "prepared" / "records.jsonl")
    manifest, _ = build_manifest(records)
    return {"work": work, "records": records, "manifest": manifest}


def ensure_shards(data: dict) -> Path:
    """The dataset's shards (OCR first when it has not run), written once; fills data's rows, splits and meta."""
    if "shards" in data:
        return data["shards"]
    if "ocr" not in data:
        data["ocr"], _ = run_ocr(data["manifest"], OcrConfig(workers=os.cpu_count() or 1),
                                 OcrCache(data["work"] / "ocrN" / "c.jsonl"))
    taxonomy = build_taxonomy(TaxonomyConfig(classes=["benign", "abuse_hate"], positive="abuse_hate"),
                              [{"name": "synthetic", "label_map": {"hateful": "abuse_hate", "benign": "benign"}}])
    cfg = ShardConfig(maxcount=64)
    rows, labels = build_samples(data["manifest"], data["ocr"], taxonomy, cfg)
    splits = assign_splits(rows, labels, cfg.fractions, cfg.seed, link_groups(rows))
    data.update(rows=rows, labels=labels, splits=splits, shard_cfg=cfg)
    out = data["work"] / "shards"
    shard_sizes = write_shards(rows, labels, splits, out, cfg, DEFAULT_MAX_PIXELS)
    train = [r for r, s in zip(rows, splits) if s == "train"]
    counts = {s: Counter("abuse_hate" if y == 1 else "benign" for y, sp in zip(labels, splits) if sp == s) for s in SPLITS}
    data["meta"] = {"classes": ["benign", "abuse_hate"], "positive_index": 1, "text_source": "ocr",
                    "counts": {s: dict(c) for s, c in counts.items()},
                    "sizes": {s: sum(c.values()) for s, c in counts.items()},
                    "tabular": fit_schema(["account_age_days", "followers", "prior_reports", "hour_posted", "hashtags"],
                                          ["platform", "verified", "region"], train),
                    "shard_sizes": shard_sizes}
    data["shards"] = out
    return out


def frozen_experts(data: dict):
    """Text, vision and tabular experts for two classes (seeded), frozen; built once per dataset."""
    if "experts" in data:
        return data["experts"]
    from Step_4.expert import Expert
    from Step_4.tabular.model import FTConfig
    from Step_4.tabular.plugin import TabularFeatureEncoder
    from Step_4.text.encoder import TextEncoder
    from Step_4.vision.encoder import VisionEncoder

    ensure_shards(data)
    tab = TabularSchema(data["meta"]["tabular"])
    torch.manual_seed(0)
    experts = {
        "text": Expert(modality="text", encoder=TextEncoder(max_length=48), n_classes=2, head_hidden=256, dropout=0.2),
        "vision": Expert(modality="vision", encoder=VisionEncoder(), n_classes=2, head_hidden=256, dropout=0.2),
        "tabular": Expert(modality="tabular", encoder=TabularFeatureEncoder(config=FTConfig(
            n_numeric=tab.n_numeric, cardinalities=tab.cardinalities)), n_classes=2, head_hidden=64, dropout=0.1),
    }
    for e in experts.values():
        e.eval()
        for p in e.parameters():
            p.requires_grad = False
    data["experts"] = experts
    return experts


def train_loader(data: dict, experts: dict, device: str):
    """Train-split batches with the inputs of the given experts."""
    from Step_4.features.batches import shard_batches

    encoders = {m: e.encoder for m, e in experts.items()}
    return shard_batches(ShardReader(data["shards"], data["meta"]), encoders, "train", train=False, batch_size=64,
                         device=device)
