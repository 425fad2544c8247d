"""Benchmarks that print ratios (not just times), so regressions show on any machine.

On a generated dataset of --count memes (in a scratch folder), one run measures:
  ocr      OCR with 1 process vs all cores, and a rerun on unchanged images from the cache
  shards   the project's shard reader vs a plain tarfile read of the same shards (bytes, and decoded)
  fusion   one fusion epoch on cached embeddings vs one epoch re-encoding through the frozen experts
  embed_cache  text + vision features: a full run vs adding 1 % new memes to a cached dataset (target: the
           increment costs <= 5 % of the full run, i.e. a ratio >= 20)
  experts  text / vision embedding and head-training throughput on the detected device
  encoders frozen-feature extraction of vision and text: the stage's path (exported runtime, precision,
           length-sorted text, uint8 images) vs the path before it, same run, default data's val + test splits
           (needs data/shards; targets 3x vision, 1.5x text; on a GPU this is the GPU table); and each input
           path alone (shards -> the encoder's batches, one process): webdataset's tarfile reader and PIL
           before vs the stage's tar reader and torchvision decoding (what bounds a GPU's feed)
  side_by_side  two real stages (fusion gated, tabular expert) alone, then at once: each one's slowdown
           (target <= 2.5x; needs the built default pipeline). side_by_side_unshared (only when named): the
           same with every stage taking every core (PIPELINE_THREADS), as before stages shared them
  runtimes (only when named) every runtime x precision for the vision and text stage paths over all
           4,500 default memes: memes/s and the features' distance from torch fp32 (about 5 min here)
  dact     text inference with adaptive depth (DACT, default λ) vs full depth at batch 1 and 64, on the
           default data's test_seen texts (needs data/shards; targets 1.5x and 1.3x)
  dvc      no-op `dvc repro` seconds and the stages each one-param change reruns (needs the built
           default pipeline in the repository; skipped otherwise)
  repro    (only with --only repro) the full default `dvc repro` from scratch, seconds per stage
Results: a table on stdout and bench/results/latest.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from bench import cases

TARGETS = {
    "ocr_parallel_speedup": 1.7, "ocr_cache_speedup": 50.0, "reader_vs_tar_bytes": 0.8,
    "reader_vs_tar_decoded": 0.8, "fusion_cached_speedup": 20.0,
    "embed_cache_add_1pct_speedup": 20.0, "dact_speedup_batch1": 1.5, "dact_speedup_batch64": 1.3,
    "vision_extraction_speedup": 3.0, "text_extraction_speedup": 1.5,
}
NEEDS_GENERATED = {"ocr", "shards", "fusion", "embed_cache", "experts"}
AT_MOST = {"side_by_side_fusion_gated_slowdown": 2.5, "side_by_side_tabular_expert_slowdown": 2.5}


def machine() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu_cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "device": "cuda" if gpu else "cpu", "gpu": gpu}


def format_rows(results: dict) -> str:
    lines = [f"{'measure':<34} {'value':>12}  {'target':>8}  status", "-" * 66]
    for key, value in results["ratios"].items():
        target, ceiling = TARGETS.get(key), AT_MOST.get(key)
        if ceiling is not None:
            lines.append(f"{key:<34} {value:>11.2f}x  {'<= ' + str(ceiling):>8}  "
                         f"{'ok' if value <= ceiling else 'ABOVE TARGET'}")
            continue
        status = "" if target is None else ("ok" if value >= target else "BELOW TARGET")
        lines.append(f"{key:<34} {value:>11.2f}x  {('>= ' + str(target)) if target else '':>8}  {status}")
    for key, value in results["throughput"].items():
        lines.append(f"{key:<34} {value:>12.1f}  {'':>8}  samples/s")
    for kind, row in results.get("encoders", {}).items():
        if kind == "skipped":
            lines.append(f"encoders: skipped ({row})")
        else:
            lines.append(f"{kind + ' features now':<34} {row['runtime']} {row['precision']}, {row['memes']} memes; vs before: "
                         f"max |diff| {row['max_abs_diff']}, min cosine {row['min_cosine']}")
    for name, row in results.get("runtimes", {}).items():
        if name == "skipped":
            lines.append(f"runtimes: skipped ({row})")
        else:
            lines.append(f"{name:<34} {row['per_s']:>12.1f}  memes/s; vs torch fp32: max |diff| {row['max_abs_diff']}, "
                         f"min cosine {row['min_cosine']}")
    for label in ("side_by_side", "side_by_side_unshared"):
        row = results.get(label, {})
        if "skipped" in row:
            lines.append(f"{label}: skipped ({row['skipped']})")
        elif row:
            lines.append(f"{label + ' (s)':<34} alone {row['alone_s']}, together {row['together_s']}")
    dact = results.get("dact", {})
    if "skipped" in dact:
        lines.append(f"dact: skipped ({dact['skipped']})")
    elif dact:
        lines.append(f"{'dact layers used (test_seen)':<34} {dact['avg_layers_test_seen']:>12.2f}  of {dact['layers']}, "
                     f"lambda {dact['lambda']}")
    dvc = results.get("dvc", {})
    if "skipped" in dvc:
        lines.append(f"dvc: skipped ({dvc['skipped']})")
    if "noop_repro_seconds" in dvc:
        ok = "ok" if dvc["noop_repro_seconds"] <= 3.0 else "ABOVE TARGET"
        lines.append(f"{'dvc no-op repro (s)':<34} {dvc['noop_repro_seconds']:>12.2f}  {'<= 3':>8}  {ok}")
    for stage, seconds in results.get("repro_stage_seconds", {}).items():
        lines.append(f"{'repro ' + stage + ' (s)':<34} {seconds:>12.1f}  {'<= 900' if stage == 'total' else '':>8}")
    for key, check in dvc.get("one_param_change", {}).items():
        status = "ok" if check["only_that_step_and_dependants"] else "UNEXPECTED"
        lines.append(f"change {key:<27} reruns {', '.join(check['invalidated'])} then "
                     f"{len(check['then_downstream'])} downstream ({', '.join(check['then_downstream']) or '-'})  {status}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=600, help="memes in the generated benchmark dataset")
    parser.add_argument("--work", default="bench/results/work", help="scratch folder (replaced)")
    parser.add_argument("--out", default="bench/results/latest.json")
    parser.add_argument("--only", nargs="*", default=None, choices=["ocr", "shards", "fusion", "embed_cache", "experts", "encoders", "side_by_side",
                                 "side_by_side_unshared", "runtimes", "dact", "dvc", "repro"],
                        help="run only these sections; 'repro' (the full default pipeline from scratch, ~8 min on "
                             "2 cores), 'side_by_side_unshared' (~5 min) and 'runtimes' (~5 min) run only when named")
    args = parser.parse_args()
    started = time.perf_counter()
    work = Path(args.work)
    results: dict = {"machine": machine(), "count": args.count, "ratios": {}, "throughput": {}, "seconds": {}}
    sections = args.only or ["ocr", "shards", "fusion", "embed_cache", "experts", "encoders", "side_by_side", "dact",
                             "dvc"]
    generated = [s for s in sections if s in NEEDS_GENERATED]  # the others read the default pipeline's outputs
    data = cases.build_dataset(work, args.count) if generated else {"work": work}
    work.mkdir(parents=True, exist_ok=True)
    for name in sections:
        t0 = time.perf_counter()
        getattr(cases, f"bench_{name}")(data, results)
        results["seconds"][name] = round(time.perf_counter() - t0, 1)
    results["seconds"]["total"] = round(time.perf_counter() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"machine: {results['machine']['cpu_cores']} cores, device {results['machine']['device']}"
          f"{' (' + results['machine']['gpu'] + ')' if results['machine']['gpu'] else ''}; {args.count} memes")
    print(format_rows(results))
    print(f"total {results['seconds']['total']} s; JSON in {args.out}")


if __name__ == "__main__":
    main()
