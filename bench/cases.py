"""The benchmark cases by section: `bench_<section>(data, results)` for each section of `python -m bench.run`
(each fills `results`: ratios, throughput, ...), and `build_dataset` for the sections on generated data."""
from __future__ import annotations

from bench.data_stages import bench_ocr, bench_shards
from bench.dataset import build_dataset
from bench.dvc_pipeline import bench_dvc, bench_repro
from bench.inference import bench_dact, bench_encoders, bench_runtimes
from bench.side_by_side import bench_side_by_side, bench_side_by_side_unshared
from bench.training import bench_embed_cache, bench_experts, bench_fusion

__all__ = ["build_dataset", "bench_ocr", "bench_shards", "bench_fusion", "bench_embed_cache", "bench_experts",
           "bench_encoders", "bench_side_by_side", "bench_side_by_side_unshared", "bench_runtimes", "bench_dact",
           "bench_dvc", "bench_repro"]
