"""Several processes (GPUs, machines) training one model with torch.distributed.

A stage started by `torchrun --nproc_per_node N -m ...` (or a launcher built on it) finds WORLD_SIZE, RANK
and LOCAL_RANK in its environment; `init` joins the process group (NCCL on CUDA,
gloo on CPU or when more ranks than GPUs share a machine's GPUs). Every rank sees the same global batches and trains on its rows of each (`local_rows`);
DistributedDataParallel averages the gradients, so N processes step like one process on the whole batch.
Validation predictions are gathered from every rank before any metric is computed, and only rank 0
writes outputs. Without those variables everything here is a no-op.
"""
from __future__ import annotations

import os

import torch

from core.errors import PipelineError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True in the process that writes outputs (rank 0, or the only process)."""
    return rank() == 0


def active() -> bool:
    return world_size() > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()


def init(device: str) -> str:
    """Join the process group when launched on several processes; returns the device this rank uses
    (cuda:LOCAL_RANK for a CUDA device)."""
    if world_size() <= 1:
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = str(device).startswith("cuda")
    backend = "gloo"
    if cuda:
        gpus = torch.cuda.device_count()
        if gpus == 0:
            raise PipelineError(f"device {device} asked for, but no CUDA GPU is visible; set the section's device "
                                "to cpu or check CUDA_VISIBLE_DEVICES")
        # torchrun and accelerate set LOCAL_WORLD_SIZE; without it assume every rank is on this machine
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        torch.cuda.set_device(local % gpus)
        device = f"cuda:{local % gpus}"
        backend = backend_for(local_ranks, gpus)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    return device


def backend_for(local_ranks: int, gpus: int) -> str:
    """NCCL when every rank of a machine has a GPU of its own; gloo when ranks share GPUs (NCCL refuses two
    ranks on one device), which wires and tests a multi-process run on a single GPU."""
    return "nccl" if local_ranks <= gpus else "gloo"


def local_rows(batch: dict) -> dict | None:
    """This rank's rows of a global batch (rows rank, rank + N, ...); None when it has fewer rows than ranks
    (every rank skips that batch alike)."""
    if not active():
        return batch
    n, size, me = world_size(), None, rank()
    for value in batch.values():
        size = len(value)
        break
    if size is None or size < n:
        return None
    return {k: (v[me::n] if torch.is_tensor(v) else v[me::n]) for k, v in batch.items()}


def gather(obj):
    """The list of every rank's `obj` (rank order); [obj] in a single process."""
    if not active():
        return [obj]
    out = [None] * world_size()
    torch.distributed.all_gather_object(out, obj)
    return out


def wrap(model: torch.nn.Module, device: str) -> torch.nn.Module:
    """The model in DistributedDataParallel when training on several processes, else itself."""
    if not active() or not any(p.requires_grad for p in model.parameters()):
        return model
    ids = [torch.device(device).index] if str(device).startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def on_main(write):
    """Run `write()` on rank 0 only; every rank then learns whether it worked, so a failure ends every process
    (the others raise too) instead of leaving them waiting. Returns write()'s result on rank 0, else None."""
    result, error = None, None
    if is_main():
        try:
            result = write()
        except BaseException as err:  # noqa: BLE001 - re-raised below, after the other ranks are told
            error = err
    if active() and any(gather(error is not None)):
        if error is None:
            raise RuntimeError("rank 0 failed while writing the outputs (its error is in its log)")
    if error is not None:
        raise error
    return result


def finish() -> None:
    """Leave the process group (end of a stage)."""
    if active():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
