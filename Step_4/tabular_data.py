"""All tabular rows of a split as tensors (no images are decoded)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from Step_3.reader import iter_samples
from Step_3.tabular import TabularEncoder


def load_tabular_split(shard_dir: Path, split: str, encoder: TabularEncoder) -> dict:
    """{'id', 'x_num', 'missing', 'x_cat', 'label', 'text_present', 'tabular_present'} sorted by id."""
    rows = sorted(iter_samples(shard_dir, split, decode_images=False), key=lambda s: s["id"])
    encoded = [encoder.encode(r["meta"].get("tabular") or {}) for r in rows]
    n = len(rows)

    def stack(i: int, dtype) -> torch.Tensor:
        if not n:
            width = encoder.n_numeric if i < 2 else len(encoder.cardinalities)
            return torch.zeros((0, width), dtype=dtype)
        return torch.from_numpy(np.stack([e[i] for e in encoded]))

    return {
        "id": [r["id"] for r in rows],
        "x_num": stack(0, torch.float32), "missing": stack(1, torch.float32), "x_cat": stack(2, torch.long),
        "label": torch.tensor([int(r["meta"]["label"]) for r in rows], dtype=torch.long),
        "text_present": torch.tensor([bool(r["text"].strip()) for r in rows], dtype=torch.bool),
        "tabular_present": torch.tensor([not encoder.is_empty(r["meta"].get("tabular") or {}) for r in rows],
                                        dtype=torch.bool),
    }


TENSOR_KEYS = ("x_num", "missing", "x_cat", "label", "text_present", "tabular_present")


def batches_with_ids(split: dict, batch_size: int):
    """Unshuffled batches that keep the id list (for embedding extraction)."""
    n = len(split["id"])
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        yield {"id": split["id"][sl], **{k: split[k][sl] for k in TENSOR_KEYS}}
