"""DVC on the built default pipeline: no-op repro time, what each one-param change reruns, and a full repro
from scratch in a scratch copy."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, timed

CHANGES = {  # one param per step -> the stages that must rerun
    "prepare.workers": ("prepare", 1),
    "ocr.settings.upscale": ("ocr", 1.01),
    "shard.seed": ("shard", 8),
    "vision_expert.head_hidden": ("vision_expert", 255),
    "fusion.gated.temperature": ("fusion@gated", 0.9),
    "evaluate.bootstrap": ("evaluate", 500),
}


def _dvc(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ROOT, capture_output=True, text=True, env=env)


def _dependants() -> dict[str, list[str]]:
    """Stage → the stages downstream of it, from DVC's own graph (edges point to dependencies)."""
    import networkx as nx
    from dvc.repo import Repo

    graph = Repo(str(ROOT)).index.graph
    return {s.addressing: sorted(a.addressing for a in nx.ancestors(graph, s)) for s in graph.nodes}


def _param_readers() -> dict[str, list[str]]:
    """Stage → the params.yaml keys it declares (dvc.yaml `params`)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    return {stage.addressing: [key for dep in stage.deps if isinstance(dep, ParamsDependency) for key in dep.params]
            for stage in Repo(str(ROOT)).index.stages}


def bench_dvc(data: dict, results: dict) -> None:
    """No-op repro time, and what each one-param change invalidates (params.yaml is restored after)."""
    import yaml

    status = _dvc("status", "--quiet")
    if status.returncode != 0:
        results["dvc"] = {"skipped": "the default pipeline is not fully built here; run `make run` first"}
        return
    times = [timed(lambda: _dvc("repro"))[1] for _ in range(3)]
    results["dvc"] = {"noop_repro_seconds": round(min(times), 2)}
    params_path = ROOT / "params.yaml"
    original = params_path.read_text()
    reruns = {}
    try:
        for key, (_, value) in CHANGES.items():
            params = yaml.safe_load(original)
            node = params
            *parents, leaf = key.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
            params_path.write_text(yaml.safe_dump(params, sort_keys=False))
            out = _dvc("repro", "--dry").stdout
            reruns[key] = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]
    finally:
        params_path.write_text(original)
    downstream, readers = _dependants(), _param_readers()
    checks = {}
    for key, (stage, _) in CHANGES.items():
        # --dry lists the stages whose own deps changed; their dependants rerun once those outputs change.
        # ok: the changed step reruns, and so does every other stage that declares the param (e.g. crossval,
        # which trains the fusions per fold, declares `fusion`), and no stage else
        declared = {name for name, keys in readers.items() if any(key == k or key.startswith(k + ".") for k in keys)}
        checks[key] = {"invalidated": reruns[key], "then_downstream": downstream[stage],
                       "only_that_step_and_dependants": stage in reruns[key] and set(reruns[key]) == declared}
    results["dvc"]["one_param_change"] = checks


def bench_repro(data: dict, results: dict) -> None:
    """The full default pipeline from scratch in a scratch copy: wall seconds per stage."""
    from tools.smoke import make_scratch

    target = data["work"] / "repro"
    make_scratch(target, None)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=target, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    starts, t0 = [], time.perf_counter()
    for line in proc.stdout:
        if line.startswith("Running stage"):
            starts.append((line.split("'")[1], time.perf_counter() - t0))
    proc.wait()
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"dvc repro failed in {target}")
    ends = [t for _, t in starts[1:]] + [total]
    results["repro_stage_seconds"] = {name: round(end - start, 1) for (name, start), end in zip(starts, ends)}
    results["repro_stage_seconds"]["total"] = round(total, 1)
