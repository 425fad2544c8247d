"""Fusion inputs (the experts' cached embeddings of one split, aligned by sample id) and the saved
fusion model's predictions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from core.errors import PipelineError
from Step_4.engine import labelled_only
from Step_4.features.tensors import load_embeddings, tensor_batches


def load_fusion_split(embeddings_root: Path, split: str, modalities: list[str], shard_ids: list[str],
                      n_classes: int) -> dict:
    """{'id', '<m>' (N, D_m), '<m>_logits' (N, C), 'label' (N,), 'true_label' (N,), 'mask' (N, M)} for one split.

    Fails, naming both counts, unless every modality's embeddings cover exactly the split's shard samples
    (`shard_ids`, sorted) with logits for `n_classes` classes: stale embeddings never meet new shards.
    """
    per = {m: load_embeddings(embeddings_root / m / f"{split}.safetensors") for m in modalities}
    for m in modalities:
        if per[m]["ids"] != shard_ids:
            extra = len(set(per[m]["ids"]) - set(shard_ids))
            raise PipelineError(f"split '{split}': the '{m}' embeddings hold {len(per[m]['ids'])} samples ({extra} not "
                                f"in the shards), the shards {len(shard_ids)}; rerun the expert stages (dvc repro)")
        if per[m]["logits"].shape[1] != n_classes:
            raise PipelineError(f"the '{m}' expert predicts {per[m]['logits'].shape[1]} classes, the shards' taxonomy "
                                f"has {n_classes}; rerun the expert stages (dvc repro)")
    ids = shard_ids
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
    return hide_drawn(mask, torch.rand(mask.shape, generator=generator).to(mask.device) < p)


def hide_drawn(mask: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """mask without the modalities `drop` marks, except in rows that would lose every one of them."""
    dropped = mask & ~drop
    empty = ~dropped.any(1)
    return torch.where(empty[:, None], mask, dropped)


def dropout_batches(train: dict, batch_size: int, p: float, seed: int, epoch: int, feature_p: float = 0.0,
                    features: tuple[str, ...] = ()):
    """Shuffled training batches (seeded per epoch) whose presence mask loses modalities with probability p.
    The epoch's draws are made at once on the CPU (the same numbers as one draw per batch) and moved to the
    tensors' device in one copy. feature_p > 0 also drops each value of the `features` tensors (the modalities'
    embeddings) with that probability, scaling the rest by 1 / (1 - feature_p)."""
    if feature_p > 0:
        yield from feature_dropout(dropout_batches(train, batch_size, p, seed, epoch), feature_p, features,
                                   torch.Generator().manual_seed(seed * 7919 + epoch + 1_000_003))
        return
    drop = None
    if p > 0 and "mask" in train:
        gen = torch.Generator().manual_seed(seed * 7919 + epoch)
        drop = (torch.rand(train["mask"].shape, generator=gen) < p).to(train["mask"].device)
    start = 0
    for batch in tensor_batches(train, batch_size, shuffle=True, seed=seed, epoch=epoch):
        if drop is not None:
            rows = len(batch["mask"])
            batch["mask"] = hide_drawn(batch["mask"], drop[start:start + rows])
            start += rows
        yield batch


def feature_dropout(batches, p: float, features: tuple[str, ...], generator: torch.Generator):
    """The batches with every value of the named feature tensors zeroed with probability p (the rest scaled)."""
    for batch in batches:
        for name in features:
            x = batch[name]
            keep = (torch.rand(x.shape, generator=generator) >= p).to(x.device, x.dtype)
            batch[name] = x * keep / (1.0 - p)
        yield batch


def save_predictions(path: Path, probs: dict[str, np.ndarray], ids: dict[str, list[str]]) -> None:
    """Per evaluated split the saved head's log-probabilities (N, C), rows in the given (sorted) id order;
    the ids sit in the metadata (one key, so the bytes are the same run to run)."""
    tensors = {s: torch.from_numpy(np.log(np.clip(p, 1e-12, 1.0)).astype(np.float32)) for s, p in probs.items()}
    save_file(tensors, str(path), metadata={"ids": json.dumps({s: ids[s] for s in probs}, sort_keys=True)})


def load_predictions(path: Path) -> dict[str, dict]:
    """{split: {'ids': [...], 'log_probs': (N, C) tensor}} from a fusion model's predictions.safetensors."""
    if not Path(path).is_file():
        raise PipelineError(f"{path} not found; run the fusion stages first (dvc repro)")
    with safe_open(str(path), framework="pt") as fh:
        ids = json.loads((fh.metadata() or {}).get("ids", "{}"))
        if set(ids) != set(fh.keys()):
            raise PipelineError(f"{path} was written by an older version (no sample ids); rerun the fusion stages "
                                "(dvc repro -f -s fusion)")
        return {s: {"ids": ids[s], "log_probs": fh.get_tensor(s)} for s in fh.keys()}


def check_same_ids(what: str, ids: list[str], expected: list[str], expected_name: str) -> None:
    """Fail naming both counts when two inputs do not hold the same samples in the same order."""
    if ids != expected:
        extra = len(set(ids) - set(expected))
        raise PipelineError(f"{what} hold {len(ids)} samples ({extra} not in {expected_name}), {expected_name} "
                            f"{len(expected)}; rerun the stages before this one (dvc repro)")
