"""All tabular rows of a split as tensors (no images are decoded)."""
from __future__ import annotations

import numpy as np
import torch

from core.errors import PipelineError
from Step_3.reader import ShardReader
from Step_3.tabular import TabularSchema


def load_tabular_split(reader: ShardReader, split: str, schema: TabularSchema) -> dict:
    """{'id', 'x_num', 'missing', 'x_cat', 'label', 'true_label', 'tabular_present'} sorted by id."""
    rows = sorted(reader.samples(split, decode_images=False), key=lambda s: s["id"])
    encoded = [schema.encode(r["meta"].get("tabular") or {}) for r in rows]
    n = len(rows)

    def stack(i: int, dtype) -> torch.Tensor:
        if not n:
            width = schema.n_numeric if i < 2 else len(schema.cardinalities)
            return torch.zeros((0, width), dtype=dtype)
        return torch.from_numpy(np.stack([e[i] for e in encoded]))

    x_cat = stack(2, torch.long)
    out_of_range = ((x_cat < 0) | (x_cat >= torch.tensor(schema.cardinalities))).any(1)  # once here, not every step
    if out_of_range.any():
        bad = int(out_of_range.nonzero()[0])
        raise PipelineError(f"{split} sample {rows[bad]['id']}: a category index is out of range for the tabular "
                            f"schema {schema.cardinalities}; rerun the shard stage")
    return {
        "id": [r["id"] for r in rows],
        "x_num": stack(0, torch.float32), "missing": stack(1, torch.float32), "x_cat": x_cat,
        "label": torch.tensor([int(r["meta"]["label"]) for r in rows], dtype=torch.long),
        "true_label": torch.tensor([int(r["meta"].get("true_label", -1)) for r in rows], dtype=torch.long),
        "tabular_present": torch.tensor([not schema.is_empty(r["meta"].get("tabular") or {}) for r in rows],
                                        dtype=torch.bool),
    }

