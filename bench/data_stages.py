"""The data stages on the generated dataset: OCR (one process vs all cores, and from its cache) and the shard
reader vs a plain tarfile read of the same shards."""
from __future__ import annotations

import os
import tarfile

from bench.common import timed
from bench.dataset import ensure_shards
from Step_2.cache import OcrCache
from Step_2.ocr import OcrConfig, build_manifest, run_ocr
from Step_3.reader import ShardReader, decode_sample, shard_urls
from Step_3.splits import SPLITS
from Step_3.tar_stream import group_samples


def bench_ocr(data: dict, results: dict) -> None:
    manifest, work = data["manifest"], data["work"]
    cores = os.cpu_count() or 1
    _, one = timed(lambda: run_ocr(manifest, OcrConfig(workers=1), OcrCache(work / "ocr1" / "c.jsonl")))
    (rows, _), many = timed(lambda: run_ocr(manifest, OcrConfig(workers=cores), OcrCache(work / "ocrN" / "c.jsonl")))
    _, cached = timed(lambda: run_ocr(manifest, OcrConfig(workers=cores), OcrCache(work / "ocrN" / "c.jsonl")))
    _, manifest_again = timed(lambda: build_manifest(data["records"]))
    data["ocr"] = rows
    results["ratios"]["ocr_parallel_speedup"] = round(one / many, 2)
    results["ratios"]["ocr_cache_speedup"] = round(many / cached, 1)
    results["ratios"]["ocr_stage_rerun_speedup"] = round((many + manifest_again) / (cached + manifest_again), 1)
    results["throughput"]["ocr_images_per_s_1_process"] = len(manifest) / one
    results["throughput"][f"ocr_images_per_s_{cores}_processes"] = len(manifest) / many


def bench_shards(data: dict, results: dict) -> None:
    """Reader vs tarfile over all splits: raw bytes, then decoded to image tensors."""
    shard_dir = ensure_shards(data)
    urls = [u for s in SPLITS for u in shard_urls(shard_dir, s)]

    def tar_bytes():
        n = 0
        for url in urls:
            with tarfile.open(url) as tar:
                for member in tar:
                    n += len(tar.extractfile(member).read())
        return n

    def tar_decoded():  # members read by tarfile, grouped into samples as the reader groups them
        for url in urls:
            with tarfile.open(url) as tar:
                for sample in group_samples(((m.name, tar.extractfile(m).read()) for m in tar), url):
                    decode_sample(sample)

    def reader(decode: bool):
        for split in SPLITS:
            loader = ShardReader(shard_dir, data["meta"]).loader(
                split, transform=(lambda s: s["image"]) if decode else (lambda s: s["__key__"]),
                collate=list, batch_size=64, raw=not decode)
            for _ in loader:
                pass

    best = lambda fn: min(timed(fn)[1] for _ in range(3))  # noqa: E731
    raw_tar, raw_reader = best(tar_bytes), best(lambda: reader(False))
    dec_tar, dec_reader = best(tar_decoded), best(lambda: reader(True))
    n = len(data["manifest"])
    results["ratios"]["reader_vs_tar_bytes"] = round(raw_tar / raw_reader, 2)
    results["ratios"]["reader_vs_tar_decoded"] = round(dec_tar / dec_reader, 2)
    results["throughput"]["reader_samples_per_s_bytes"] = n / raw_reader
    results["throughput"]["reader_samples_per_s_decoded"] = n / dec_reader
