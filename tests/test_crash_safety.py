"""SIGKILL a stage while it writes its outputs, rerun it: the result equals an uninterrupted run."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from core.files import write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _shard_cmd(work: Path, out: str) -> list[str]:
    return [sys.executable, "-m", "Step_3.shard", "--params", str(work / "params.yaml"),
            "--manifest", str(work / "manifest.jsonl"), "--ocr", str(work / "ocr.jsonl"),
            "--schema", str(work / "schema.json"), "--taxonomy-out", str(work / f"{out}-taxonomy.json"),
            "--splits-out", str(work / f"{out}-splits.json"), "--out", str(work / out)]


def test_shard_stage_killed_mid_write_then_rerun_is_identical(tiny_pipeline, tmp_path):
    t = tiny_pipeline
    manifest = t["manifest"]  # 40 memes; maxcount 1 below gives one tar per sample, so the kill lands mid-write
    write_jsonl(tmp_path / "manifest.jsonl", manifest)
    write_jsonl(tmp_path / "ocr.jsonl", t["ocr"])
    (tmp_path / "schema.json").write_text('{"numeric": ["followers"], "categorical": ["platform"]}')
    params = {"prepare": {"sources": [{"name": "synthetic", "kind": "synthetic",
                                       "label_map": {"hateful": "abuse_hate", "benign": "benign"}}]},
              "taxonomy": {"classes": ["benign", "abuse_hate"], "positive": "abuse_hate"},
              "shard": {"seed": 7, "maxcount": 1}, "ocr": {"max_pixels": 40000000}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    subprocess.run(_shard_cmd(tmp_path, "clean"), check=True, cwd=ROOT, env=env, capture_output=True)
    victim = subprocess.Popen(_shard_cmd(tmp_path, "crashed"), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not any(tmp_path.glob(".crashed.tmp-*/train/*.tar")):
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "crashed").exists(), "no half-written output under the final name"
    assert any(tmp_path.glob(".crashed.tmp-*")), "the kill happened while shards were being written"

    subprocess.run(_shard_cmd(tmp_path, "crashed"), check=True, cwd=ROOT, env=env, capture_output=True)
    assert not any(tmp_path.glob(".crashed.tmp-*")), "stale temp folders are cleaned up"
    assert _digest(tmp_path / "crashed") == _digest(tmp_path / "clean")
    assert (tmp_path / "crashed-splits.json").read_bytes() == (tmp_path / "clean-splits.json").read_bytes()
