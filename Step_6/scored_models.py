"""The models under evaluation: the three experts and every fusion head with the experts it was trained on."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core.errors import PipelineError
from Step_4.expert import Expert
from Step_4.registry import load_expert
from Step_5.ensemble import load_fusion_head


@dataclass
class FusionModel:
    method: str
    head: nn.Module
    info: dict  # fusion.json
    experts: dict[str, Expert]  # the experts it reads, by modality (shared objects when the same folder)


@dataclass
class ModelSet:
    experts: dict[str, Expert]  # the standalone experts, by modality
    fusions: dict[str, FusionModel] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return [f"{m}_expert" for m in self.experts] + [f"fusion_{m}" for m in self.fusions]


def load_models(experts_dir: Path, fusion_dir: Path, modalities: list[str], methods: list[str], classes: list[str],
                device: str) -> ModelSet:
    """Every expert and fusion head, each expert folder loaded once; all must share the shards' classes."""
    loaded: dict[str, Expert] = {}

    def expert_at(folder: str | Path) -> Expert:
        key = str(Path(folder).resolve())
        if key not in loaded:
            expert, info = load_expert(folder, device)
            if info["classes"] != classes:
                raise PipelineError(f"{folder} predicts {info['classes']}, the shards' taxonomy is {classes}; "
                                    "rerun the expert stages (dvc repro)")
            loaded[key] = expert.eval()
        return loaded[key]

    models = ModelSet(experts={m: expert_at(experts_dir / f"{m}_expert") for m in modalities}, classes=classes)
    for method in methods:
        head, info = load_fusion_head(fusion_dir / method, device)
        if info["classes"] != classes:
            raise PipelineError(f"{fusion_dir / method} was trained on {info['classes']}, the shards' taxonomy is "
                                f"{classes}; rerun the fusion stages (dvc repro)")
        models.fusions[method] = FusionModel(method, head, info, {m: expert_at(p) for m, p in info["experts"].items()})
    return models


@torch.no_grad()
def fusion_probs(model: FusionModel, features: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Class probabilities of a fusion head from its experts' features (N, D_m) and the presence mask (N, M)."""
    batch = {"mask": mask}
    for m in model.info["modalities"]:
        batch[m] = features[m]
        batch[f"{m}_logits"] = model.experts[m].forward_head(features[m])
    return torch.softmax(model.head(batch).float(), dim=-1).cpu()


@torch.no_grad()
def gate_weights(model: FusionModel, features: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor | None:
    """(N, M) gate weights for heads that have gates, else None."""
    if not hasattr(model.head, "gates"):
        return None
    batch = {"mask": mask, **{m: features[m] for m in model.info["modalities"]}}
    return model.head.gates(batch)[0].cpu()
