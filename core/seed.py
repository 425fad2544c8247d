"""Deterministic seeding and device choice."""
from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (if imported) so CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of later steps
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def pick_device(requested: str = "auto") -> str:
    """'auto' picks CUDA when present, else CPU; any other value is used as given."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def set_determinism(mode: str, device: str) -> None:
    """'strict': deterministic algorithms only (the default; on the CPU always). 'fast' on CUDA: cudnn picks the
    fastest kernels (cudnn.benchmark) and non-deterministic ones are allowed, so reruns may differ slightly."""
    import torch

    fast = mode == "fast" and str(device).startswith("cuda")
    torch.use_deterministic_algorithms(not fast, warn_only=True)
    torch.backends.cudnn.benchmark = fast
    torch.backends.cudnn.deterministic = not fast
