"""Shared fixtures: a tiny synthetic dataset taken through prepare → OCR → shards once per session, and the whole
DAG built twice on the tiny profile once per session (end-to-end tier)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from core.params import build  # noqa: E402
from Step_1.config import PrepareConfig  # noqa: E402


def tiny_prepare_config(count: int = 40, seed: int = 13) -> PrepareConfig:
    return build(PrepareConfig, {"workers": 2, "sources": [{
        "name": "synthetic", "kind": "synthetic", "label_map": {"hateful": "abuse_hate", "benign": "benign"},
        "options": {"count": count, "seed": seed}}]}, where="prepare")


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> dict:
    """Run Steps 1–3 on 40 memes; returns the paths of every output."""
    from core.files import read_jsonl, write_jsonl
    from Step_1.prepare import prepare
    from Step_2.cache import OcrCache
    from Step_2.ocr import OcrConfig, build_manifest, run_ocr
    from Step_3.shard import ShardConfig, build_samples
    from Step_3.splits import assign_splits, link_groups
    from Step_3.taxonomy import TaxonomyConfig, build_taxonomy

    root = tmp_path_factory.mktemp("tiny")
    cfg = tiny_prepare_config()
    prepare(cfg, root / "prepared")
    records = read_jsonl(root / "prepared" / "records.jsonl")
    manifest, rejected = build_manifest(records, 40_000_000)
    ocr_rows, _ = run_ocr(manifest, OcrConfig(), OcrCache(root / "cache" / "entries.jsonl"))
    write_jsonl(root / "manifest.jsonl", manifest)
    write_jsonl(root / "ocr.jsonl", ocr_rows)
    taxonomy = build_taxonomy(TaxonomyConfig(classes=["benign", "abuse_hate"], positive="abuse_hate"),
                              [{"name": "synthetic", "label_map": {"hateful": "abuse_hate", "benign": "benign"}}])
    shard_cfg = ShardConfig(maxcount=8)
    rows, labels = build_samples(manifest, ocr_rows, taxonomy, shard_cfg)
    splits = assign_splits(rows, labels, shard_cfg.fractions, shard_cfg.seed, link_groups(rows))
    return {"root": root, "records": records, "manifest": manifest, "ocr": ocr_rows, "rows": rows, "labels": labels,
            "splits": splits, "taxonomy": taxonomy, "shard_cfg": shard_cfg}


E2E_FIXTURES = {"stages", "chromium"}  # stage CLIs as subprocesses; a real browser
E2E_MODULES = {"test_smoke.py", "test_smoke_predict.py", "test_smoke_evaluate.py",  # the tiny DAG's builds
               "test_dvc_remote.py", "test_distributed.py"}  # DVC remotes, torchrun


def pytest_collection_modifyitems(items) -> None:
    """The end-to-end tier (`pytest -m e2e`, `make test-e2e`): tests that build the DAG, use a DVC remote or
    torchrun, drive a browser, or run stage CLIs as subprocesses. Everything else is the fast tier (`make test`)."""
    for item in items:
        if item.path.name in E2E_MODULES or E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture
def chromium() -> str:
    """Chromium's path; skips without it, except under CI, where `make test` installs it (`make browser`)."""
    from tools.browser import BrowserMissing, find_chromium

    try:
        return find_chromium()
    except BrowserMissing as missing:
        if os.environ.get("CI"):
            pytest.fail(str(missing))
        pytest.skip(str(missing))


class StageRunner:
    """Runs the project's CLIs as subprocesses in one folder (with its params.yaml); a failure shows their output."""

    def __init__(self, cwd: Path, tiny_root: Path, **env: str):
        root = Path(__file__).resolve().parents[1]
        self.cwd, self.tiny_root = cwd, tiny_root
        self.env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env}

    def __call__(self, *args: str, params: str = "params.yaml", launcher: list[str] | None = None) -> str:
        import subprocess
        import sys

        command = [*(launcher or [sys.executable]), "-m", *args, "--params", params]
        out = subprocess.run(command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{' '.join(args[:2])}: {out.stdout[-2000:]}{out.stderr[-3000:]}"
        return out.stdout

    def shards(self, out: str = "shards") -> None:
        """Step 3 over the tiny pipeline's manifest and OCR, with this folder's params."""
        t = self.tiny_root
        self("Step_3.shard", "--manifest", str(t / "manifest.jsonl"), "--ocr", str(t / "ocr.jsonl"),
             "--schema", str(t / "prepared" / "schema.json"), "--out", out)


@pytest.fixture
def stages(tiny_pipeline, tmp_path) -> StageRunner:
    """A StageRunner in tmp_path over the tiny pipeline (write tmp_path / 'params.yaml' first)."""
    return StageRunner(tmp_path, tiny_pipeline["root"], OMP_NUM_THREADS="1")


DAG_THREADS = 1  # each build's stages: two builds side by side on two cores, and stages rerun by hand match them


@dataclass(frozen=True)
class DagBuild:
    """One build of the whole DAG on the tiny profile: its folder and `tools.smoke.run_smoke`'s result."""
    path: Path
    result: dict
    threads: int = DAG_THREADS

    def env(self) -> dict:
        """The environment of a stage run again by hand in this build: its thread count, for identical floats."""
        return {**os.environ, "PIPELINE_THREADS": str(self.threads)}


@pytest.fixture(scope="session")
def tiny_dag_builds(tmp_path_factory) -> dict[str, DagBuild]:
    """Two builds of the whole DAG from scratch, side by side: {'first': ..., 'second': ...}. Most of a tiny
    build is single-threaded start-up, so the pair takes about as long as one build on every core."""
    from concurrent.futures import ThreadPoolExecutor

    from tools.smoke import run_smoke

    root = tmp_path_factory.mktemp("smoke")
    with ThreadPoolExecutor(2) as pool:
        runs = {name: pool.submit(run_smoke, root / name, verbose=False, threads=DAG_THREADS)
                for name in ("first", "second")}
        return {name: DagBuild(root / name, run.result()) for name, run in runs.items()}


@pytest.fixture(scope="session")
def tiny_dag(tiny_dag_builds) -> DagBuild:
    """The first of the two builds: the one the end-to-end tests read and run stages and predict in."""
    return tiny_dag_builds["first"]
