"""The deployed fusion model: the seed heads' probabilities averaged (a seed ensemble), saved in one folder.

Each seed's head sees the same expert features; their disagreement is the seed noise of the per-seed metrics,
and their average is steadier than any one of them (across seeds and across CPU kernels). `forward` returns
the log of the averaged probabilities, so a softmax (and a calibration temperature) applies as to any head.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from core.errors import PipelineError
from core.files import read_json
from Step_5.models import FusionDims, create_fusion


class SeedEnsemble(nn.Module):
    """Heads trained alike from different seeds; the output is log(mean of their softmax probabilities)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, batch: dict) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(batch).float(), dim=-1) for m in self.members]).mean(0)
        return torch.log(probs.clamp_min(1e-12))


class GatedSeedEnsemble(SeedEnsemble):
    """A seed ensemble of gated heads: its gate weights are the members' averaged."""

    def gates(self, batch: dict) -> tuple[torch.Tensor, None]:
        return torch.stack([m.gates(batch)[0] for m in self.members]).mean(0), None


def seed_ensemble(members: list[nn.Module]) -> nn.Module:
    """One head as it is; several as a (gated, when they have gates) seed ensemble."""
    if len(members) == 1:
        return members[0]
    return (GatedSeedEnsemble if hasattr(members[0], "gates") else SeedEnsemble)(members)


def load_fusion_head(folder: Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """A saved fusion model from its folder (fusion.json + model.safetensors) in eval mode, with its fusion.json:
    the seed ensemble of the heads listed in fusion.json's "seeds" (one head for a folder with one seed)."""
    if not (folder / "fusion.json").is_file():
        raise PipelineError(f"{folder} is not a fusion model folder (fusion.json missing); pass e.g. "
                            "models/mm_fusion/gated after `dvc repro`")
    info = read_json(folder / "fusion.json")
    dims = FusionDims(inputs=info["inputs"], n_classes=len(info["classes"]))
    members = [create_fusion(info["method"], dims, info["params"]) for _ in info.get("seeds", [0])]
    head = seed_ensemble(members)
    state = load_file(str(folder / "model.safetensors"))
    state.pop("_empty", None)
    head.load_state_dict(state)
    return head.to(device).eval(), info
