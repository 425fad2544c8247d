"""Per-modality model inputs: a decoded shard sample → tensors, and the batch collation."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from Step_3.tabular import TabularEncoder


def sample_fields(sample: dict) -> dict:
    """Fields every modality keeps: id, label, and whether text / tabular values are present."""
    return {"id": sample["id"], "label": int(sample["meta"]["label"]),
            "text_present": bool(sample["text"].strip()), "tabular": sample["meta"].get("tabular") or {}}


def make_inputs(modality: str, encoder, *, train: bool, tabular: TabularEncoder) -> tuple[Callable, Callable]:
    """(transform, collate) for a modality. `encoder` supplies the tokenizer or image transform."""
    image_transform = encoder.transform(train) if modality == "vision" else None

    def transform(sample: dict) -> dict:
        out = sample_fields(sample)
        out["tabular_present"] = not tabular.is_empty(out["tabular"])
        if modality == "text":
            out["text"] = sample["text"]
        elif modality == "vision":
            out["image"] = image_transform(sample["image"])
        else:
            out["x_num"], out["missing"], out["x_cat"] = tabular.encode(out["tabular"])
        return out

    def collate(rows: list[dict]) -> dict:
        batch = {"id": [r["id"] for r in rows], "label": torch.tensor([r["label"] for r in rows], dtype=torch.long),
                 "text_present": torch.tensor([r["text_present"] for r in rows]),
                 "tabular_present": torch.tensor([r["tabular_present"] for r in rows])}
        if modality == "text":
            batch.update(encoder.tokenize([r["text"] for r in rows]))
        elif modality == "vision":
            batch["image"] = torch.stack([r["image"] for r in rows])
        else:
            for key in ("x_num", "missing", "x_cat"):
                batch[key] = torch.from_numpy(np.stack([r[key] for r in rows]))
        return batch

    return transform, collate
