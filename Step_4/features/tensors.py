"""Embedding cache: each expert's features and logits for every sample, keyed by sample id.

File: data/embeddings/<modality>/<split>.safetensors with tensors features (N, D), logits (N, C: the saved,
first seed's model), ensemble_logits (N, C: log of every seed's averaged probabilities, when the stage trained seeds),
labels (N,), true_labels (N,: -1 unknown), present (N,: the modality is there), for an adaptive-depth
encoder layers_used (N,), and the ids (sorted) and modality in the metadata.
Fusion over frozen experts reads these and never runs an encoder again.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from core import threads
from core.errors import PipelineError
from core.progress import progress
from Step_4.engine import to_device


@torch.no_grad()
def extract(expert, batches: Iterable[dict], device: str, total: int | None = None, desc: str = "embed") -> dict:
    """Run the expert once over batches; returns id-sorted features, logits, labels, presence flags."""
    return extract_by_split(expert, ((None, batch) for batch in batches), device, [None], total, desc)[None]


@torch.no_grad()
def extract_by_split(expert, split_batches: Iterable[tuple], device: str, splits: list, total: int | None = None,
                     desc: str = "embed") -> dict:
    """`extract` over (split, batch) pairs in any order: {split: its outputs} for every split named (empty ones
    too), each with the pass's rate. On a GPU the outputs come back to the host without waiting for the
    device per batch (one wait at the end)."""
    expert.eval().to(device)
    found = {split: Collected() for split in splits}
    started, count = time.perf_counter(), 0
    for split, batch in progress(split_batches, total=total, desc=desc, unit="batch", leave=False):
        threads.refresh()
        out = found[split]
        out.labels.append(batch["label"].cpu())
        out.truth.append(batch["true_label"].cpu())
        out.present.append(batch[f"{expert.modality}_present"].cpu())
        batch = to_device(batch, device)
        f = expert.forward_features(batch) if "features" not in batch else batch["features"]
        out.features.append(to_host(f.float()))
        out.logits.append(to_host(expert.forward_head(f).float()))
        if getattr(expert.encoder, "layers_used", None) is not None:  # an encoder that halts early (DACT)
            out.depth.append(to_host(expert.encoder.layers_used))
        out.ids += list(batch["id"])
        count += len(batch["id"])
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)  # the copies to the host are done
    seconds = time.perf_counter() - started
    rate = round(count / seconds, 1) if seconds > 0 else 0.0
    return {split: out.result(expert, rate) for split, out in found.items()}


class Collected:
    """One split's outputs batch by batch, as `extract` returns them once id-sorted."""

    def __init__(self):
        self.ids, self.features, self.logits, self.labels, self.truth, self.present, self.depth = ([] for _ in range(7))

    def result(self, expert, rate: float) -> dict:
        if not self.ids:  # nothing selected (e.g. a rank's empty share): empty tensors of the right widths
            classes = expert.head_config["n_classes"]
            empty = {"ids": [], "features": torch.zeros(0, expert.out_dim), "logits": torch.zeros(0, classes),
                     "labels": torch.zeros(0, dtype=torch.long), "true_labels": torch.zeros(0, dtype=torch.long),
                     "present": torch.zeros(0, dtype=torch.bool), "samples_per_s": 0.0}
            if hasattr(expert.encoder, "layers_used"):
                empty["layers_used"] = torch.zeros(0, dtype=torch.long)
            return empty
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        index = torch.tensor(order, dtype=torch.long)
        data = {"ids": [self.ids[i] for i in order], "features": torch.cat(self.features)[index],
                "logits": torch.cat(self.logits)[index], "labels": torch.cat(self.labels)[index],
                "true_labels": torch.cat(self.truth)[index], "present": torch.cat(self.present)[index].bool()}
        if self.depth:
            data["layers_used"] = torch.cat(self.depth)[index]
        data["samples_per_s"] = rate
        return data


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU copy of a device tensor, queued without waiting (into pinned memory; valid after the device
    synchronises); a CPU tensor as it is."""
    return tensor.to("cpu", non_blocking=True) if tensor.device.type == "cuda" else tensor


def save_embeddings(path: Path, data: dict, modality: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"features": data["features"].contiguous(), "logits": data["logits"].contiguous(),
               "labels": data["labels"].contiguous(), "true_labels": data["true_labels"].contiguous(),
               "present": data["present"].to(torch.uint8).contiguous()}
    if "ensemble_logits" in data:  # log of the seed heads' averaged probabilities (the seed ensemble)
        tensors["ensemble_logits"] = data["ensemble_logits"].contiguous()
    if "layers_used" in data:  # layers each sample ran through (an adaptive-depth encoder)
        tensors["layers_used"] = data["layers_used"].to(torch.int16).contiguous()
    # one metadata key: safetensors writes several in hash order, which would change the bytes run to run
    info = json.dumps({"ids": data["ids"], "modality": modality}, sort_keys=True)
    save_file(tensors, str(path), metadata={"info": info})


def load_embeddings(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path} not found; run the expert stages first (dvc repro)")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    data = load_file(str(path))
    data["present"] = data["present"].bool()
    data["ids"] = json.loads(meta["info"])["ids"]
    return data


def stack_rows(parts: list[dict]) -> dict:
    """Dicts of aligned tensors with the same keys, their rows one after another (one part: itself)."""
    if len(parts) == 1:
        return parts[0]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


RESIDENT_BYTES = 2 << 30  # tensors up to this size are kept on a CUDA device for training


def resident(tensors: dict, device: str) -> dict:
    """The tensors moved to a CUDA device once, so that `tensor_batches` cuts each batch there: no copy from
    pageable memory per step, and with it no wait of the host for the device per step. Unchanged on the CPU or
    beyond RESIDENT_BYTES (batches are then copied per step)."""
    if not str(device).startswith("cuda"):
        return tensors
    size = sum(v.numel() * v.element_size() for v in tensors.values() if torch.is_tensor(v))
    if size > RESIDENT_BYTES:
        return tensors
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in tensors.items()}


def tensor_batches(tensors: dict[str, torch.Tensor], batch_size: int, *, shuffle: bool, seed: int = 0,
                   epoch: int = 0) -> Iterator[dict]:
    """Mini-batches over aligned tensors or lists (first dim N); seeded per-epoch shuffling (drawn on the CPU,
    so the order is the same on every device). Tensors on a device are cut there: the order goes to the device
    once per call."""
    n = len(next(v for v in tensors.values() if torch.is_tensor(v)))
    if shuffle:
        gen = torch.Generator().manual_seed(seed * 1000003 + epoch)
        order = torch.randperm(n, generator=gen)
    else:
        order = torch.arange(n)
    on_device = {device: order.to(device) for device in {v.device for v in tensors.values() if torch.is_tensor(v)}}
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield {k: (v[on_device[v.device][start:start + batch_size]] if torch.is_tensor(v)
                   else [v[i] for i in idx.tolist()]) for k, v in tensors.items()}
