"""A teammate gets the pipeline's outputs from a DVC remote without retraining: push to a local-folder
remote, clone the repository fresh, `dvc pull`, and `dvc repro` has nothing to do."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_push_clone_pull_then_repro_does_nothing(tmp_path):
    project, remote, clone = tmp_path / "project", tmp_path / "remote", tmp_path / "clone"
    project.mkdir()
    for folder in ("Step_1", "Step_2", "Step_3", "core"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "raw", project / "data" / "raw")
    shutil.copy(ROOT / "runtime.env", project / "runtime.env")
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]  # the project's own first three stages
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {s: stages[s] for s in ("prepare", "ocr", "shard")}}))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["prepare"]["sources"][0]["options"]["count"] = 30
    params["shard"]["maxcount"] = 16
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    (project / ".gitignore").write_text("__pycache__/\n/data/ocr_cache/\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", "PYTHONPATH": "",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # this environment's dvc, python

    def sh(*cmd, cwd=project):
        out = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{' '.join(cmd)}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
        return out.stdout

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    sh("dvc", "repro")
    sh("dvc", "remote", "add", "-d", "store", str(remote))
    sh("dvc", "push")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "pipeline")

    sh("git", "clone", "-q", str(project), str(clone), cwd=tmp_path)
    assert not (clone / "data" / "shards").exists()
    sh("dvc", "pull", cwd=clone)
    assert "up to date" in sh("dvc", "status", cwd=clone)
    assert "Running stage" not in sh("dvc", "repro", cwd=clone)
    for path in ("data/shards/meta.json", "data/ocr.jsonl", "data/prepared/records.jsonl"):
        assert (clone / path).read_bytes() == (project / path).read_bytes()
