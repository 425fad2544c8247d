"""Run the whole DAG end to end on a tiny profile in a scratch copy of the repository.

Copies the code, dvc.yaml and params.yaml (with profiles/smoke.yaml merged over it) into
--dir, writes the example Hateful-Memes folder and CSV export (with broken files) under
data/raw/examples, runs `dvc repro` there, checks that every declared output exists, then runs
`dvc repro` again and checks that nothing reran.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tools.example_data import write_csv_export, write_hateful_memes

ROOT = Path(__file__).resolve().parents[1]
COPY = ("core", "Step_1", "Step_2", "Step_3", "Step_4", "Step_5", "Step_6", "dvc.yaml", ".dvcignore", "runtime.env")


def deep_merge(base: dict, overlay: dict) -> dict:
    """Mappings merge key by key; anything else in the overlay replaces the base value."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def make_scratch(target: Path, profile: Path | None) -> None:
    """Fresh scratch repo at `target` (code copied, profile merged into params.yaml, DVC without git)."""
    target = target.resolve()
    if target == ROOT or ROOT.is_relative_to(target) or (target / ".git").exists():
        raise RuntimeError(f"refusing to replace {target}: it holds the repository; pick a scratch folder")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, target / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    merged = deep_merge(params, (yaml.safe_load(profile.read_text()) or {}) if profile else {})
    (target / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))

    write_hateful_memes(target / "data" / "raw" / "examples" / "hateful_memes")
    write_csv_export(target / "data" / "raw" / "examples" / "export")
    (target / ".dvc").mkdir()
    (target / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n    check_update = false\n")


def dvc(target: Path, *args: str, threads: int | None = None) -> subprocess.CompletedProcess:
    """`dvc <args>` in `target`, offline, with a fixed thread count (`threads`, else PIPELINE_THREADS, else every
    core): builds compared for identical metrics must not depend on what else runs beside them (stages otherwise
    share the cores with other jobs, and the thread count moves floats in the last digits)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1"}
    env["PIPELINE_THREADS"] = str(threads or env.get("PIPELINE_THREADS") or os.cpu_count() or 1)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=target, env=env, text=True, capture_output=True)


def run_smoke(target: Path, profile: Path = ROOT / "profiles" / "smoke.yaml", verbose: bool = True,
              threads: int | None = None) -> dict:
    """Build the DAG in `target` (its stages on `threads` threads each; see `dvc`); returns {'seconds',
    'second_run_output', 'second_run_stages', 'status_after'}. Raises RuntimeError on failure."""
    make_scratch(target, profile)
    started = time.perf_counter()
    first = dvc(target, "repro", threads=threads)
    if verbose:
        print(first.stdout[-4000:])
    if first.returncode != 0:
        raise RuntimeError(f"dvc repro failed in {target}:\n{first.stdout[-3000:]}\n{first.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    second = dvc(target, "repro", threads=threads)
    if second.returncode != 0:
        raise RuntimeError(f"second dvc repro failed:\n{second.stderr[-3000:]}")
    status = dvc(target, "status", "--json", threads=threads)
    rerun = [line.split("'")[1] for line in second.stdout.splitlines() if line.startswith("Running stage")]
    return {"seconds": round(seconds, 1), "second_run_output": second.stdout, "second_run_stages": rerun,
            "status_after": json.loads(status.stdout or "null")}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.smoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=".smoke", help="scratch folder (replaced)")
    parser.add_argument("--profile", default=str(ROOT / "profiles" / "smoke.yaml"), help="params overlay")
    args = parser.parse_args()
    try:
        result = run_smoke(Path(args.dir).resolve(), Path(args.profile))
    except RuntimeError as err:
        print(f"smoke run failed: {err}", file=sys.stderr)
        sys.exit(1)
    second = result["second_run_output"].strip()
    print(f"smoke: whole DAG in {result['seconds']} s; second `dvc repro`:\n{second}")
    if result["second_run_stages"] or result["status_after"] != {}:
        print("smoke run failed: the second `dvc repro` was not a no-op", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
