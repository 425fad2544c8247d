"""Model inputs from shard samples: every expert's own inputs, the shared fields and the presence mask."""
from __future__ import annotations

from collections.abc import Callable

import torch


def expert_inputs(encoders: dict[str, torch.nn.Module], *, train: bool, meta: dict) -> tuple[Callable, Callable]:
    """(transform, collate) making one batch with the inputs of every given encoder (by modality).

    A batch holds 'id' (list), 'label' (B,: -1 unlabelled), 'true_label' (B,: -1 unknown), each encoder's inputs
    and its '<modality>_present' flags (B,).
    """
    parts = {m: encoder.inputs(train=train, meta=meta) for m, encoder in encoders.items()}

    def transform(sample: dict) -> dict:
        out = {"id": sample["id"], "label": int(sample["meta"]["label"]),
               "true_label": int(sample["meta"].get("true_label", -1))}
        for m, (to_inputs, _) in parts.items():
            out[m] = to_inputs(sample)
        return out

    def collate(rows: list[dict]) -> dict:
        batch = {"id": [r["id"] for r in rows], "label": torch.tensor([r["label"] for r in rows], dtype=torch.long),
                 "true_label": torch.tensor([r["true_label"] for r in rows], dtype=torch.long)}
        for m, (_, collate_one) in parts.items():
            batch.update(collate_one([r[m] for r in rows]))
        return batch

    return transform, collate


def shard_batches(reader, encoders: dict[str, torch.nn.Module], split: str, *, train: bool, batch_size: int,
                  seed: int = 0, num_workers: int = 0, device: str = "cpu", **options):
    """A persistent loader of one split with the inputs of the given encoders (shuffled and augmented when train);
    options go to ShardReader.loader (e.g. select)."""
    transform, collate = expert_inputs(encoders, train=train, meta=reader.meta)
    # members no encoder reads (images, engagement series) are skipped unread
    return reader.loader(split, transform=transform, collate=collate, batch_size=batch_size, shuffle=train, seed=seed,
                         num_workers=num_workers, device=device,
                         decode_images=any(getattr(e, "reads_images", False) for e in encoders.values()),
                         decode_series=any(getattr(e, "reads_series", False) for e in encoders.values()), **options)


def pooled_batches(reader, encoders: dict[str, torch.nn.Module], splits: list[str], *, batch_size: int,
                   num_workers: int = 0, device: str = "cpu", **options):
    """One unshuffled pass over several splits by one pool of loader workers, yielding (split, batch) with the
    inputs of the given encoders; options go to ShardReader.pooled_loader (e.g. select, order_by)."""
    transform, collate = expert_inputs(encoders, train=False, meta=reader.meta)
    return reader.pooled_loader(splits, transform=transform, collate=collate, batch_size=batch_size,
                                num_workers=num_workers, device=device,
                                decode_images=any(getattr(e, "reads_images", False) for e in encoders.values()),
                                decode_series=any(getattr(e, "reads_series", False) for e in encoders.values()),
                                **options)


def presence_mask(batch: dict, modalities: list[str]) -> torch.Tensor:
    """(B, M) bool: True where the modality is present, in the given order."""
    return torch.stack([batch[f"{m}_present"].bool() for m in modalities], dim=1)
