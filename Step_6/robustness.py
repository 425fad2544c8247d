"""The robustness suite: each condition runs through the real path (image -> OCR -> experts -> fusion).

A seeded sample of every evaluated split is degraded (Step_6.corruptions), the corrupted images are
read by tesseract with the fusion models' own OCR settings, encoded by the experts and scored by every
model. Three caches make a second run fast: corrupted images (by source hash and settings), OCR
results (by image hash and OCR settings, as in Step 2) and expert features (by content and encoder
fingerprint, as in Step 4). A 'missing_<m>' condition hides modality m from the fusion heads; that
expert then has no score.
"""
from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.params import build
from core.progress import progress
from Step_2.cache import OcrCache
from Step_2.tesseract import OcrSettings, engine_version, read_texts
from Step_3.reader import IMAGE_KEYS, ShardReader, decode_series
from Step_4.engine import to_device
from Step_4.features.batches import expert_inputs
from Step_4.features.cache import FeatureCache, fingerprint
from Step_4.metrics import classification_metrics
from Step_6.config import IMAGE_CORRUPTIONS, MISSING, TEXT_CORRUPTIONS, RobustnessConfig
from Step_6.corruptions import CorruptedImages, corrupt_text, rng_for
from Step_6.inputs import EvaluationInputs
from Step_6.scored_models import ModelSet, fusion_probs


@dataclass
class Item:
    """One meme as a condition presents it to the models."""

    id: str
    image: bytes  # encoded image (PNG/JPEG) bytes
    text: str
    meta: dict  # the shard sample's json (label, tabular, ...)
    series: np.ndarray | None = None  # the engagement series (hours x channels), None without one


def robustness_report(models: ModelSet, data: EvaluationInputs, cfg: RobustnessConfig, cache_dir: Path,
                      device: str) -> dict:
    """The report's robustness sections and, under 'run', the suite's cache counts: every condition on a seeded
    sample of each evaluated split, read with the fusion models' own OCR settings."""
    ocr = build(OcrSettings, next(iter(models.fusions.values())).info.get("ocr_settings", {}), where="ocr_settings")
    suite = Suite(models, ocr, cfg, cache_dir, data.reader.meta["tabular"], device)
    splits = [s for s in data.splits if s in cfg.splits]
    sampled = {s: sample_split(data.reader, s, cfg.samples_per_split, cfg.seed) for s in splits}
    results = suite.run(sampled, data.positive)
    return {"robustness": results, "robustness_conditions": ["clean"] + list(cfg.conditions),
            "robustness_summary": least_degraded(results, splits),
            "robustness_samples": {s: len(v) for s, v in sampled.items()},
            "run": {"caches": suite.counts}}  # facts of this run (cache hits, seconds): written apart


def sample_split(reader: ShardReader, split: str, count: int, seed: int) -> list[Item]:
    """A seeded sample of `count` labelled memes of the split (all of them when it is smaller), id-sorted.
    The ids are drawn first; only the drawn memes' images are kept in memory."""
    labelled = sorted(s["id"] for s in reader.samples(split, decode_images=False) if int(s["meta"]["label"]) >= 0)
    if len(labelled) > count:
        keep = np.sort(np.random.default_rng([seed, len(labelled)]).choice(len(labelled), size=count, replace=False))
        labelled = [labelled[i] for i in keep]
    chosen, items = set(labelled), []
    for raw in reader.samples(split, raw=True):
        if raw["__key__"] in chosen:
            image = next(raw[k] for k in IMAGE_KEYS if k in raw)
            items.append(Item(raw["__key__"], image, raw["txt"].decode("utf-8"), json.loads(raw["json"]),
                              decode_series(raw.get("series.npy"))))
    return sorted(items, key=lambda item: item.id)


def _make_job(args: tuple) -> None:
    folder, cfg, image, condition = args
    CorruptedImages(folder, cfg).make(image, condition)


def _ocr_job(args: tuple) -> list[tuple[str, float]]:
    images, settings = args
    return read_texts([Image.open(io.BytesIO(b)).convert("RGB") for b in images], settings)


class Suite:
    """Runs the conditions over the sampled items of each split and scores every model."""

    def __init__(self, models: ModelSet, ocr: OcrSettings, cfg: RobustnessConfig, cache_dir: Path,
                 schema: dict, device: str = "cpu"):
        self.models, self.ocr, self.cfg, self.device = models, ocr, cfg, device
        self.cache_dir = Path(cache_dir)
        self.images = CorruptedImages(self.cache_dir / "images", cfg)
        self.ocr_cache = OcrCache(self.cache_dir / "ocr" / "entries.jsonl")
        self.ocr_key = ocr.key(engine_version())
        self.schema = schema
        experts = {id(e): e for e in models.experts.values()}
        experts.update({id(e): e for f in models.fusions.values() for e in f.experts.values()})
        self.experts = experts
        self.feature_caches = {k: FeatureCache(self.cache_dir / "features" / e.modality, fingerprint(e.encoder))
                               for k, e in experts.items() if hasattr(e.encoder, "content_key")}
        self.counts = {"images_made": 0, "ocr_read": 0, "features_encoded": {e.modality: 0 for e in experts.values()}}

    # -- inputs per condition -------------------------------------------------------------------------
    def condition_items(self, items: list[Item], condition: str, pool) -> list[Item]:
        if condition in IMAGE_CORRUPTIONS:
            images = self.corrupted(items, condition, pool)
            texts = self.read(images, pool)
            return [Item(it.id, img, text, it.meta, it.series) for it, img, text in zip(items, images, texts)]
        if condition in TEXT_CORRUPTIONS:
            return [Item(it.id, it.image, corrupt_text(it.text, condition, self.cfg,
                                                       rng_for(self.cfg.seed, it.id, condition)), it.meta, it.series)
                    for it in items]
        return items

    def corrupted(self, items: list[Item], condition: str, pool) -> list[bytes]:
        """Each item's corrupted image: read from the cache folder, or made (over the pool) and stored."""
        paths = [self.images.path(it.image, condition) for it in items]
        todo = list({p: (self.images.folder, self.cfg, it.image, condition)
                     for it, p in zip(items, paths) if not p.is_file()}.values())
        if pool:
            pool.map(_make_job, todo, chunksize=8)
        else:
            for job in todo:
                _make_job(job)
        self.counts["images_made"] += len(todo)
        return [p.read_bytes() for p in paths]

    def read(self, images: list[bytes], pool) -> list[str]:
        """OCR text per image: the cache first, tesseract (in batches over the pool) for the rest."""
        keys = [OcrCache.key(hashlib.sha256(b).hexdigest(), self.ocr_key) for b in images]
        todo = sorted({k: b for k, b in zip(keys, images) if self.ocr_cache.get(k) is None}.items())
        if todo:
            chunks = [todo[i:i + 24] for i in range(0, len(todo), 24)]
            jobs = [([b for _, b in chunk], self.ocr) for chunk in chunks]
            results = pool.map(_ocr_job, jobs) if pool else [_ocr_job(j) for j in jobs]
            self.ocr_cache.add_many([{"key": k, "text": text, "confidence": conf}
                                     for chunk, texts in zip(chunks, results) for (k, _), (text, conf) in zip(chunk, texts)])
            self.counts["ocr_read"] += len(todo)
        return [self.ocr_cache.get(k)["text"] for k in keys]

    # -- features and scores --------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, expert, items: list[Item]) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, D), present (N,)) of the items through the expert's own inference inputs, in batches."""
        transform, collate = expert_inputs({expert.modality: expert.encoder}, train=False,
                                           meta={"tabular": self.schema})
        features, present = [], []
        for start in range(0, len(items), self.cfg.batch_size):
            samples = [{"id": it.id, "text": it.text, "meta": {"label": -1, "tabular": it.meta.get("tabular") or {}},
                        "series": it.series,
                        "image": Image.open(io.BytesIO(it.image)).convert("RGB") if expert.modality == "vision"
                        else None} for it in items[start:start + self.cfg.batch_size]]
            batch = to_device(collate([transform(s) for s in samples]), self.device)
            features.append(expert.forward_features(batch).float().cpu())
            present.append(batch[f"{expert.modality}_present"].bool().cpu())
        self.counts["features_encoded"][expert.modality] += len(items)
        return torch.cat(features), torch.cat(present)

    def features(self, expert, items: list[Item]) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, D), present (N,)): from the expert's feature cache by content, encoding only what it
        lacks (each content once); experts without a content key are encoded every time."""
        cache = self.feature_caches.get(id(expert))
        if cache is None:
            return self.encode(expert, items)
        keys = [expert.encoder.content_key({"png": it.image, "txt": it.text.encode("utf-8")}) for it in items]
        missing: dict[str, Item] = {}
        for item, key in zip(items, keys):
            if key not in cache:
                missing.setdefault(key, item)
        if missing:
            cache.add(list(missing), *self.encode(expert, list(missing.values())))
        return cache.get(keys)

    @torch.no_grad()
    def scores(self, items: list[Item], condition: str) -> dict[str, np.ndarray | None]:
        """Class probabilities (N, C) of every model under the condition (None: the expert's input is missing)."""
        features = {k: self.features(e, items) for k, e in self.experts.items()}
        hidden = condition.removeprefix("missing_") if condition in MISSING else None
        out: dict[str, np.ndarray | None] = {}
        for m, expert in self.models.experts.items():
            feats, _ = features[id(expert)]
            out[f"{m}_expert"] = None if m == hidden else torch.softmax(
                expert.forward_head(feats.to(self.device)).float(), -1).cpu().numpy()
        for method, model in self.models.fusions.items():
            modalities = model.info["modalities"]
            mask = torch.stack([features[id(model.experts[m])][1] & (m != hidden) for m in modalities], dim=1)
            feats = {m: features[id(model.experts[m])][0].to(self.device) for m in modalities}
            out[f"fusion_{method}"] = fusion_probs(model, feats, mask.to(self.device)).numpy()
        return out

    def run(self, splits: dict[str, list[Item]], positive: int) -> dict:
        """{model: {condition: {split: {auroc, macro_f1, auroc_drop, macro_f1_drop}}}} with 'clean' first."""
        conditions = ["clean"] + list(self.cfg.conditions)
        context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
        pool = context.Pool(self.cfg.ocr_workers) if context and self.cfg.ocr_workers > 1 else None
        results: dict = {}
        try:
            for condition in progress(conditions, desc="robustness", unit="condition"):
                for split, items in splits.items():
                    labels = np.array([int(it.meta["label"]) for it in items])
                    scored = self.scores(self.condition_items(items, condition, pool), condition)
                    for name, probs in scored.items():
                        row = None if probs is None else {k: classification_metrics(labels, probs, positive)[k]
                                                          for k in ("auroc", "macro_f1")}
                        results.setdefault(name, {}).setdefault(condition, {})[split] = row
        finally:
            if pool:
                pool.close()
                pool.join()
            for cache in self.feature_caches.values():
                cache.save()
        return with_drops(results)


def with_drops(results: dict) -> dict:
    """Adds auroc_drop and macro_f1_drop (clean minus condition, same split) to every condition's rows."""
    for conditions in results.values():
        clean = conditions["clean"]
        for condition, per_split in conditions.items():
            for split, row in per_split.items():
                if row is not None and condition != "clean":
                    for key in ("auroc", "macro_f1"):
                        row[f"{key}_drop"] = round(clean[split][key] - row[key], 4)
    return results


def least_degraded(results: dict, splits: list[str]) -> dict:
    """Per fusion model the mean AUROC drop over the conditions and splits, and the fusion that drops least."""
    mean_drop = {}
    for name, conditions in results.items():
        if name.startswith("fusion_"):
            drops = [row["auroc_drop"] for c, per in conditions.items() if c != "clean"
                     for s, row in per.items() if row is not None and s in splits
                     and np.isfinite(row.get("auroc_drop", np.nan))]  # a one-class sample has no AUROC
            mean_drop[name] = round(float(np.mean(drops)), 4) if drops else None
    finite = {k: v for k, v in mean_drop.items() if v is not None}
    return {"mean_auroc_drop": mean_drop, "least_degraded_fusion": min(finite, key=finite.get) if finite else None}
