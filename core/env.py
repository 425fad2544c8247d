"""Environment defaults every stage reads: the repository's `runtime.env` (KEY=value lines, # comments).

A variable already set in the environment wins, so `HF_HUB_OFFLINE=0 dvc repro` (or an export) goes
online without editing the file. Loaded when `core` is imported, i.e. before any stage imports
transformers or huggingface_hub, which read these variables once at import time.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULTS_FILE = Path(__file__).resolve().parents[1] / "runtime.env"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value pairs; blank lines and # comments are skipped, quotes around a value are dropped."""
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"{path}:{number}: expected KEY=value, got {line!r}")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_env_defaults(path: Path = DEFAULTS_FILE) -> dict[str, str]:
    """Set each variable of the file that the environment does not set yet; returns those set."""
    if not path.is_file():
        return {}
    applied = {k: v for k, v in read_env_file(path).items() if k not in os.environ}
    os.environ.update(applied)
    return applied
