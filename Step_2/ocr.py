"""Stage `ocr`: image manifest and OCR text for every prepared record.

Reads data/prepared/records.jsonl; writes the manifest (id, image, sha256, perceptual hash,
size, mode, source, label, gold text, tabular, split), the OCR results (id, text, confidence,
engine), the rejected images and index rows with reasons (data/prepared/rejected.jsonl is
merged in), and OCR metrics (CER against gold captions, images/s).
OCR runs over `ocr.workers` processes and is cached by image hash + settings, so a rerun
after adding images reads only the new ones.
"""
from __future__ import annotations

import argparse
import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from core.errors import PipelineError, run_cli
from core.files import read_jsonl, write_json, write_jsonl
from core.params import check, section
from Step_2.cache import OcrCache
from Step_2.engine import OcrSettings, char_error_rate, engine_version, read_texts
from Step_2.images import BadImage, read_image
from Step_2.phash import phash


@dataclass
class OcrConfig:
    workers: int = 2
    max_pixels: int = 40_000_000
    max_reject_fraction: float = 0.05
    settings: OcrSettings = field(default_factory=OcrSettings)

    def __post_init__(self) -> None:
        check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")
        check(self.max_pixels > 0, "max_pixels must be positive")
        check(0.0 <= self.max_reject_fraction <= 1.0, "max_reject_fraction must be in [0, 1]")


BATCH = 24  # images per tesseract run: amortises its model loading, still keeps all workers busy


def _ocr_worker(args: tuple[list[str], OcrSettings, int]) -> list[tuple[str, float]]:
    paths, settings, max_pixels = args
    return read_texts([read_image(path, max_pixels)[1] for path in paths], settings)


def build_manifest(records: list[dict], max_pixels: int) -> tuple[list[dict], list[dict]]:
    """Manifest rows for readable images, and rejected rows (id, image, reason) for the rest."""
    manifest, rejected = [], []
    for record in tqdm(records, desc="manifest", unit="img"):
        try:
            _, rgb, info = read_image(record["image"], max_pixels)
        except BadImage as err:
            rejected.append({"id": record["id"], "image": record["image"], "source": record["source"], "reason": str(err)})
            continue
        manifest.append({
            "id": record["id"], "image": record["image"], "source": record["source"], "sha256": info.sha256,
            "phash": phash(rgb),
            "width": info.width, "height": info.height, "mode": info.mode, "format": info.format,
            "needs_conversion": info.needs_conversion, "label": record["label"], "gold_text": record["text"],
            "split": record["split"], "group": record["group"], "tabular": record["tabular"], "meta": record["meta"],
        })
    return manifest, rejected


def run_ocr(manifest: list[dict], cfg: OcrConfig, cache: OcrCache) -> tuple[list[dict], dict]:
    """OCR every manifest row (cache first, then new images in parallel); returns rows and timing."""
    version = engine_version()
    settings_key = cfg.settings.key(version)
    todo = {}
    for row in manifest:
        key = OcrCache.key(row["sha256"], settings_key)
        if cache.get(key) is None:
            todo.setdefault(key, row["image"])
    started = time.perf_counter()
    if todo:
        keys = list(todo)
        size = max(1, min(BATCH, len(keys) // cfg.workers))
        chunks = [keys[i:i + size] for i in range(0, len(keys), size)]
        jobs = [([todo[k] for k in chunk], cfg.settings, cfg.max_pixels) for chunk in chunks]
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(cfg.workers) as pool, tqdm(total=len(keys), desc="ocr", unit="img") as bar:
            for chunk, texts in zip(chunks, pool.imap(_ocr_worker, jobs)):
                cache.add_many([{"key": key, "text": text, "confidence": conf, "engine": version}
                                for key, (text, conf) in zip(chunk, texts)])
                bar.update(len(chunk))
    seconds = time.perf_counter() - started
    rows = []
    for row in manifest:
        hit = cache.get(OcrCache.key(row["sha256"], settings_key))
        rows.append({"id": row["id"], "text": hit["text"], "confidence": hit["confidence"], "engine": hit["engine"]})
    timing = {"ocr_new_images": len(todo), "ocr_cached_images": len(manifest) - len(todo), "ocr_seconds": round(seconds, 2),
              "images_per_s": round(len(todo) / seconds, 2) if todo and seconds > 0 else None}
    return rows, timing


def ocr_metrics(manifest: list[dict], ocr_rows: list[dict]) -> dict:
    """Character error rate over records that carry gold text (micro-averaged by gold length)."""
    errors = chars = 0.0
    exact = scored = empty = 0
    for row, ocr in zip(manifest, ocr_rows):
        empty += not ocr["text"]
        gold = row["gold_text"]
        if not gold:
            continue
        cer = char_error_rate(ocr["text"], gold)
        errors += cer * len(gold)
        chars += len(gold)
        exact += cer == 0
        scored += 1
    return {"cer": round(errors / chars, 4) if chars else None, "exact_match": round(exact / scored, 4) if scored else None,
            "scored_images": scored, "empty_text": empty}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_2.ocr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (section 'ocr')")
    parser.add_argument("--records", default="data/prepared/records.jsonl", help="records from Step_1")
    parser.add_argument("--manifest", default="data/manifest.jsonl", help="output manifest")
    parser.add_argument("--ocr", default="data/ocr.jsonl", help="output OCR results")
    parser.add_argument("--rejected", default="data/rejected.jsonl", help="output list of unusable images")
    parser.add_argument("--cache", default="data/ocr_cache/entries.jsonl", help="persistent OCR cache file")
    parser.add_argument("--metrics", default="metrics/ocr.json", help="output metrics")
    args = parser.parse_args()
    cfg = section(OcrConfig, "ocr", args.params)
    if not Path(args.records).is_file():
        raise PipelineError(f"{args.records} not found; run the prepare stage first (dvc repro prepare)")
    records = read_jsonl(args.records)
    manifest, rejected = build_manifest(records, cfg.max_pixels)
    index_file = Path(args.records).with_name("rejected.jsonl")
    index_rejected = read_jsonl(index_file) if index_file.is_file() else []
    rejected = index_rejected + rejected
    fraction = len(rejected) / max(1, len(records) + len(index_rejected))
    if fraction > cfg.max_reject_fraction:
        first = "; ".join(f"{r['image']}: {r['reason']}" for r in rejected[:5])
        raise PipelineError(f"{len(rejected)} of {len(records) + len(index_rejected)} memes are unusable ({fraction:.1%} > "
                            f"ocr.max_reject_fraction={cfg.max_reject_fraction}); first: {first}")
    ocr_rows, timing = run_ocr(manifest, cfg, OcrCache(args.cache))
    metrics = {**ocr_metrics(manifest, ocr_rows), **timing, "images": len(manifest), "rejected": len(rejected)}
    write_jsonl(args.manifest, manifest)
    write_jsonl(args.ocr, ocr_rows)
    write_jsonl(args.rejected, rejected)
    write_json(args.metrics, metrics)
    print(f"ocr: {len(manifest)} images, {len(rejected)} rejected, CER {metrics['cer']}, "
          f"{timing['ocr_new_images']} read ({timing['images_per_s']} img/s), {timing['ocr_cached_images']} from cache")


if __name__ == "__main__":
    run_cli(main)
