"""runtime.env: stages run offline without the Makefile, and a variable set in the shell wins."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.env import load_env_defaults, read_env_file

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import Step_4.train_expert, os, huggingface_hub.constants as c; "
         "print(os.environ['HF_HUB_OFFLINE'], os.environ['TOKENIZERS_PARALLELISM'], c.HF_HUB_OFFLINE)")


def run_probe(**env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                                "TOKENIZERS_PARALLELISM")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_a_stage_module_goes_offline_with_no_variables_set():
    assert run_probe() == ["1", "false", "True"]


def test_the_shell_wins_over_the_file():
    assert run_probe(HF_HUB_OFFLINE="0") == ["0", "false", "False"]


def test_env_file_format(tmp_path, monkeypatch):
    path = tmp_path / "x.env"
    path.write_text("# comment\n\nA_ONE=1\nB_TWO = 'quoted'\n")
    assert read_env_file(path) == {"A_ONE": "1", "B_TWO": "quoted"}
    monkeypatch.setenv("A_ONE", "kept")
    monkeypatch.delenv("B_TWO", raising=False)
    assert load_env_defaults(path) == {"B_TWO": "quoted"} and os.environ["A_ONE"] == "kept"
    path.write_text("no equals sign here\n")
    with pytest.raises(ValueError, match="x.env:1: expected KEY=value"):
        read_env_file(path)
