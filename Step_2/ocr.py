"""Stage `ocr`: image manifest and OCR text for every prepared record.

Reads data/prepared/records.jsonl; writes the manifest (id, image, sha256, perceptual hash,
size, mode, source, label, gold text, tabular, engagement series path and sha256, split), the OCR results (id, text, confidence,
engine), the rejected images and index rows with reasons (data/prepared/rejected.jsonl is
merged in), and OCR metrics (CER against gold captions, images/s).
OCR runs over `ocr.workers` processes and is cached by image hash + settings, so a rerun
after adding images reads only the new ones.

Several machines: `--part K/N` OCRs only part K of N of the images (by content hash) and writes only the cache
part file `<cache stem>.part-K-of-N.jsonl` (no manifest, no metrics). Copy every part file into the cache folder
of the machine that runs the stage: the cache reads them, and the stage OCRs nothing again.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.cli import run_cli
from core.errors import PipelineError
from core.files import read_jsonl, write_json, write_jsonl
from core.params import check, section
from core.progress import progress
from Step_2.cache import OcrCache
from Step_2.images import DEFAULT_MAX_PIXELS, BadImage, read_image
from Step_2.phash import phash
from Step_2.tesseract import OcrSettings, char_error_rate, engine_version, read_texts


@dataclass
class OcrConfig:
    workers: int = 2
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_reject_fraction: float = 0.05
    settings: OcrSettings = field(default_factory=OcrSettings)

    def __post_init__(self) -> None:
        check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")
        check(self.max_pixels > 0, "max_pixels must be positive")
        check(0.0 <= self.max_reject_fraction <= 1.0, "max_reject_fraction must be in [0, 1]")


BATCH = 24  # images per tesseract run: amortises its model loading, still keeps all workers busy


def manifest_row(record: dict, info, image_hash: str) -> dict:
    return {
        "id": record["id"], "image": record["image"], "source": record["source"], "sha256": info.sha256,
        "phash": image_hash, "width": info.width, "height": info.height, "mode": info.mode, "format": info.format,
        "needs_conversion": info.needs_conversion, "label": record["label"], "gold_text": record["text"],
        "split": record["split"], "group": record["group"], "tabular": record["tabular"], "meta": record["meta"],
        "series": record.get("series"), "series_sha256": _file_sha256(record["series"]) if record.get("series") else None,
    }


def _scan_worker(args: tuple[list[dict], list[bool], OcrSettings, int]) -> tuple[list, list, list]:
    """Decode each image once: its manifest row (with pHash) or rejection, and OCR where asked."""
    records, wanted, settings, max_pixels = args
    rows, rejected, images, read_rows = [], [], [], []
    for record, want in zip(records, wanted):
        try:
            _, rgb, info = read_image(record["image"], max_pixels)
        except BadImage as err:
            rejected.append({"id": record["id"], "image": record["image"], "source": record["source"],
                             "reason": str(err)})
            continue
        rows.append(manifest_row(record, info, phash(rgb)))
        if want:
            images.append(rgb)
            read_rows.append(rows[-1]["sha256"])
    return rows, rejected, list(zip(read_rows, read_texts(images, settings) if images else []))


def _file_sha256(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def scan(records: list[dict], cfg: OcrConfig, cache: OcrCache | None) -> tuple[list[dict], list[dict], list[dict], dict]:
    """One parallel pass over the images: manifest rows, rejected rows, OCR rows (cache first) and timing.

    Each image is decoded once, for its facts, its pHash and (when not cached) OCR. Without a cache
    only the manifest is built.
    """
    version = engine_version() if cache is not None else ""
    settings_key = cfg.settings.key(version) if cache is not None else ""
    planned, wanted = set(), []
    for record in records:
        sha = _file_sha256(record["image"]) if cache is not None else None
        key = OcrCache.key(sha, settings_key) if sha else None
        want = key is not None and key not in planned and cache.get(key) is None
        planned.add(key)
        wanted.append(want)
    size = max(1, min(BATCH, len(records) // cfg.workers))
    jobs = [(records[i:i + size], wanted[i:i + size], cfg.settings, cfg.max_pixels) for i in range(0, len(records), size)]
    manifest, rejected = [], []
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(cfg.workers) as pool, \
            progress(total=len(records), desc="read + ocr" if cache is not None else "manifest", unit="img") as bar:
        for (chunk, _, _, _), (rows, bad, texts) in zip(jobs, pool.imap(_scan_worker, jobs)):
            manifest += rows
            rejected += bad
            if texts:
                cache.add_many([{"key": OcrCache.key(sha, settings_key), "text": text, "confidence": conf,
                                 "engine": version} for sha, (text, conf) in texts])
            bar.update(len(chunk))
    seconds = time.perf_counter() - started
    if cache is None:
        return manifest, rejected, [], {}
    new = sum(wanted)
    rows = [ocr_row(row, cache.get(OcrCache.key(row["sha256"], settings_key))) for row in manifest]
    timing = {"ocr_new_images": new, "ocr_cached_images": len(manifest) - new, "ocr_seconds": round(seconds, 2),
              "images_per_s": round(new / seconds, 2) if new and seconds > 0 else None}
    return manifest, rejected, rows, timing


def ocr_row(row: dict, hit: dict) -> dict:
    return {"id": row["id"], "text": hit["text"], "confidence": hit["confidence"], "engine": hit["engine"]}


def build_manifest(records: list[dict], max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[list[dict], list[dict]]:
    """Manifest rows for readable images, and rejected rows (id, image, reason) for the rest."""
    manifest, rejected, _, _ = scan(records, OcrConfig(max_pixels=max_pixels), None)
    return manifest, rejected


def run_ocr(manifest: list[dict], cfg: OcrConfig, cache: OcrCache) -> tuple[list[dict], dict]:
    """OCR rows for existing manifest rows, and timing: only images the cache lacks are read (in parallel)."""
    settings_key = cfg.settings.key(engine_version())
    todo = {OcrCache.key(r["sha256"], settings_key): r for r in manifest}
    todo = [{**r, "text": r["gold_text"]} for key, r in todo.items() if cache.get(key) is None]
    _, _, _, timing = scan(todo, cfg, cache)
    rows = [ocr_row(row, cache.get(OcrCache.key(row["sha256"], settings_key))) for row in manifest]
    return rows, {**timing, "ocr_cached_images": len(manifest) - timing["ocr_new_images"]}


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


def parse_part(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N."""
    try:
        part, parts = (int(x) for x in text.split("/"))
    except ValueError:
        raise PipelineError(f"--part must look like K/N (e.g. 2/4), got '{text}'") from None
    if not 1 <= part <= parts:
        raise PipelineError(f"--part {text}: K must be between 1 and N")
    return part, parts


def in_part(sha256: str, part: int, parts: int) -> bool:
    """Whether an image (by content hash) belongs to part K of N: the same answer on every machine."""
    return int(sha256[:8], 16) % parts == part - 1


def run_part(records: list[dict], cfg: OcrConfig, cache_path: str, part: int, parts: int) -> dict:
    """OCR the readable images of one part into the cache's part file; returns counts and timing."""
    mine = [r for r in records if (sha := _file_sha256(r["image"])) is not None and in_part(sha, part, parts)]
    cache = OcrCache(cache_path, write_to=OcrCache.part_file(cache_path, part, parts))
    _, rejected, _, timing = scan(mine, cfg, cache)
    return {"part": f"{part}/{parts}", "images": len(mine), "rejected": len(rejected), **timing,
            "written_to": str(cache.path)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_2.ocr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (section 'ocr')")
    parser.add_argument("--records", default="data/prepared/records.jsonl", help="records from Step_1")
    parser.add_argument("--manifest", default="data/manifest.jsonl", help="output manifest")
    parser.add_argument("--ocr", default="data/ocr.jsonl", help="output OCR results")
    parser.add_argument("--rejected", default="data/rejected.json",
                        help="output JSON list of unusable images with reasons")
    parser.add_argument("--cache", default="data/ocr_cache/entries.jsonl", help="persistent OCR cache file")
    parser.add_argument("--metrics", default="metrics/ocr.json", help="output quality metrics (CER, exact match)")
    parser.add_argument("--report", default="reports/ocr.json", help="output counts and timings")
    parser.add_argument("--part", default=None, metavar="K/N",
                        help="OCR only part K of N of the images (one part per machine) into the cache part file; "
                             "writes nothing else")
    args = parser.parse_args()
    cfg = section(OcrConfig, "ocr", args.params)
    if not Path(args.records).is_file():
        raise PipelineError(f"{args.records} not found; run the prepare stage first (dvc repro prepare)")
    records = read_jsonl(args.records)
    if args.part:
        done = run_part(records, cfg, args.cache, *parse_part(args.part))
        print(f"ocr part {done['part']}: {done['images']} images, {done['ocr_new_images']} read "
              f"({done['images_per_s']} img/s), {done['ocr_cached_images']} already cached -> {done['written_to']}")
        return
    cache = OcrCache(args.cache)
    manifest, rejected, ocr_rows, timing = scan(records, cfg, cache)
    index_file = Path(args.records).with_name("rejected.jsonl")
    index_rejected = read_jsonl(index_file) if index_file.is_file() else []
    rejected = index_rejected + rejected
    fraction = len(rejected) / max(1, len(records) + len(index_rejected))
    if fraction > cfg.max_reject_fraction:
        first = "; ".join(f"{r['image']}: {r['reason']}" for r in rejected[:5])
        raise PipelineError(f"{len(rejected)} of {len(records) + len(index_rejected)} memes are unusable ({fraction:.1%} > "
                            f"ocr.max_reject_fraction={cfg.max_reject_fraction}); first: {first}")
    metrics = {**ocr_metrics(manifest, ocr_rows), **timing, "images": len(manifest), "rejected": len(rejected)}
    write_jsonl(args.manifest, manifest)
    write_jsonl(args.ocr, ocr_rows)
    write_json(args.rejected, rejected)
    write_json(args.metrics, {k: metrics[k] for k in ("cer", "exact_match")})
    write_json(args.report, {k: v for k, v in metrics.items() if k not in ("cer", "exact_match")})
    print(f"ocr: {len(manifest)} images, {len(rejected)} rejected, CER {metrics['cer']}, "
          f"{timing['ocr_new_images']} read ({timing['images_per_s']} img/s), {timing['ocr_cached_images']} from cache")


if __name__ == "__main__":
    run_cli(main)
