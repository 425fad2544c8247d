"""What every benchmark case shares: the repository root, a timer and the device to measure on."""
from __future__ import annotations

import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def timed(fn):
    """(fn(), its wall seconds)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def detected_device() -> str:
    """The device the cases measure on: CUDA when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"
