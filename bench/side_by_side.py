"""Two real stages of the built default pipeline alone, then side by side: how much each slows the other."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.common import ROOT

SIDE_BY_SIDE = {  # two stage commands (the default pipeline's), outputs redirected to a scratch folder
    "fusion_gated": ["-m", "Step_5.train_fusion", "gated", "--shards", "{R}/data/shards", "--embeddings",
                     "{R}/data/embeddings", "--experts", "{R}/models", "--model", "{W}/fusion", "--metrics-dir",
                     "{W}/fusion_metrics", "--reports-dir", "{W}/fusion_reports", "--params", "{R}/params.yaml"],
    "tabular_expert": ["-m", "Step_4.train_expert", "tabular", "--shards", "{R}/data/shards", "--mfm",
                       "{R}/models/tabular_mfm", "--model", "{W}/tabular", "--embeddings", "{W}/tabular_embeddings",
                       "--metrics-dir", "{W}/tabular_metrics", "--reports-dir", "{W}/tabular_reports",
                       "--params", "{R}/params.yaml"],
}


def _side_by_side(data: dict, results: dict, shared: bool) -> None:
    if not (ROOT / "data" / "embeddings").is_dir() or not (ROOT / "models" / "tabular_mfm").is_dir():
        results["side_by_side"] = {"skipped": "the default pipeline is not built here; run `make run` first"}
        return
    work = (data["work"] / "side_by_side").resolve()  # absolute: each stage runs in its own folder
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIPELINE_JOBS_DIR": str(work / "jobs")}
    if not shared:  # every stage takes every core, as before the stages shared them
        env["PIPELINE_THREADS"] = str(os.cpu_count() or 1)

    def start(name: str, tag: str) -> subprocess.Popen:
        args = [a.replace("{R}", str(ROOT)).replace("{W}", str(work / tag)) for a in SIDE_BY_SIDE[name]]
        (work / tag).mkdir(parents=True, exist_ok=True)
        return subprocess.Popen([sys.executable, *args], cwd=work / tag, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def wait(procs: dict[str, subprocess.Popen], t0: float) -> dict[str, float]:
        done = {}
        while len(done) < len(procs):
            for name, proc in procs.items():
                if name not in done and proc.poll() is not None:
                    if proc.returncode != 0:
                        raise RuntimeError(f"side-by-side: {name} failed ({' '.join(proc.args)})")
                    done[name] = time.perf_counter() - t0
            time.sleep(0.05)
        return done

    alone = {}
    for name in SIDE_BY_SIDE:
        alone.update(wait({name: start(name, f"alone_{name}")}, time.perf_counter()))
    t0 = time.perf_counter()
    together = wait({name: start(name, f"together_{name}") for name in SIDE_BY_SIDE}, t0)
    label = "side_by_side" if shared else "side_by_side_unshared"
    for name in SIDE_BY_SIDE:
        results["ratios"][f"{label}_{name}_slowdown"] = round(together[name] / alone[name], 2)
    results[label] = {"alone_s": {k: round(v, 1) for k, v in alone.items()},
                      "together_s": {k: round(v, 1) for k, v in together.items()}}


def bench_side_by_side(data: dict, results: dict) -> None:
    """Two real stages (fusion gated, tabular expert) alone, then side by side: each one's slowdown
    (target <= 2.5x). Needs the built default pipeline."""
    _side_by_side(data, results, shared=True)


def bench_side_by_side_unshared(data: dict, results: dict) -> None:
    """The same with PIPELINE_THREADS fixed to every core, i.e. the stages not sharing them (as before)."""
    _side_by_side(data, results, shared=False)
