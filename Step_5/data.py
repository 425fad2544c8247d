"""Fusion inputs: the experts' cached embeddings of one split, aligned by sample id."""
from __future__ import annotations

from pathlib import Path

import torch

from core.errors import PipelineError
from Step_4.embeddings import load_embeddings
from Step_4.engine import labelled_only


def load_fusion_split(embeddings_root: Path, split: str, modalities: list[str]) -> dict:
    """{'id', '<m>' (N, D_m), '<m>_logits' (N, C), 'label' (N,), 'true_label' (N,), 'mask' (N, M)} for one split."""
    per = {m: load_embeddings(embeddings_root / m / f"{split}.safetensors") for m in modalities}
    ids = per[modalities[0]]["ids"]
    for m in modalities[1:]:
        if per[m]["ids"] != ids:
            raise PipelineError(f"embeddings of '{m}' and '{modalities[0]}' for split '{split}' cover different samples; "
                                "rerun the expert stages (dvc repro)")
    data = {"id": ids, "label": per[modalities[0]]["labels"], "true_label": per[modalities[0]]["true_labels"],
            "mask": torch.stack([per[m]["present"] for m in modalities], dim=1)}
    for m in modalities:
        data[m] = per[m]["features"]
        data[f"{m}_logits"] = per[m]["logits"]
    return data


def tensors_of(data: dict) -> dict:
    """The tensor entries (no ids) of the labelled rows."""
    return labelled_only({k: v for k, v in data.items() if torch.is_tensor(v)})


def drop_modalities(mask: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Randomly hide present modalities with probability p each; a row never loses all of them."""
    if p <= 0:
        return mask
    drop = torch.rand(mask.shape, generator=generator) < p
    dropped = mask & ~drop
    empty = ~dropped.any(1)
    dropped[empty] = mask[empty]
    return dropped
