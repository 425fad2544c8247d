"""Progress bars that suit where the output goes: live on a terminal, a line every 30 s in a log file;
under several processes only rank 0 draws them."""
from __future__ import annotations

import os
import sys

from tqdm import tqdm

LOG_INTERVAL = 30.0  # seconds between updates when stderr is a file or pipe (CI logs, `dvc repro > log`)


def progress(iterable=None, **options) -> tqdm:
    """tqdm with the same options; when stderr is not a terminal, updates at most every LOG_INTERVAL seconds."""
    if not sys.stderr.isatty():
        options["mininterval"] = max(options.get("mininterval", 0.1), LOG_INTERVAL)
    if os.environ.get("RANK", "0") != "0":  # torchrun / accelerate: one bar per stage, not one per rank
        options["disable"] = True
    return tqdm(iterable, **options)
