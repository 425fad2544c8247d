"""The models under evaluation: the three experts and every fusion head with the experts it was trained on."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from core.errors import PipelineError
from core.files import read_json
from Step_4.expert import Expert, load_expert
from Step_5.models import FusionDims, create_fusion


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


def load_head(folder: Path, device: str) -> tuple[nn.Module, dict]:
    """A fusion head from its folder (fusion.json + model.safetensors), in eval mode."""
    if not (folder / "fusion.json").is_file():
        raise PipelineError(f"{folder} is not a fusion model folder (fusion.json missing); run the fusion stages")
    info = read_json(folder / "fusion.json")
    head = create_fusion(info["method"], FusionDims(inputs=info["inputs"], n_classes=len(info["classes"])),
                         info["params"])
    state = load_file(str(folder / "model.safetensors"))
    state.pop("_empty", None)
    head.load_state_dict(state)
    return head.to(device).eval(), info


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
        head, info = load_head(fusion_dir / method, device)
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
