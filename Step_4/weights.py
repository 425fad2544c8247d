"""Snapshots of a model's trainable weights during training: the best epochs kept, and their mean."""
from __future__ import annotations

import torch
from torch import nn


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights that training can change: trainable parameters and all buffers."""
    names = {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items() if k in names}


def keep_best(kept: list[tuple[float, int, dict]], candidate: tuple[float, int, nn.Module],
              size: int) -> list[tuple[float, int, dict]]:
    """The `size` best (score, epoch, weights) so far, best first (ties: the earlier epoch); the candidate's
    weights are copied only when it enters."""
    score, epoch, model = candidate
    if len(kept) >= size and score <= kept[-1][0]:
        return kept
    kept = sorted([*kept, (score, epoch, trainable_state(model))], key=lambda k: (-k[0], k[1]))
    return kept[:size]


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of weights of one model (summed in the given order, in float64); integer buffers
    (step counters) are taken from the first."""
    mean = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            total = sum(s[name].double() for s in states)
            mean[name] = (total / len(states)).to(first.dtype)
        else:
            mean[name] = first
    return mean
