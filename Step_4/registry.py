"""The expert registry: one entry per modality, `create_expert(kind, cfg, meta)` as timm's create_model.

An entry names, by import path, the modality's plugin module (`build(cfg, meta)`, `rebuild(config, folder)`;
optionally `train(cfg, ctx)`, `fold_trainer(cfg, ctx)` and `features_learn_labels(cfg)`) and, as "module:Class",
the dataclass of its params section `<kind>_expert`. Plugins never import the registry: it sits above them. docs/architecture.md
lists the plugin interface and shows how to add a modality.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from safetensors.torch import load_file

from core.errors import PipelineError
from core.files import read_json
from Step_4.expert import Expert, make_expert


@dataclass(frozen=True)
class ExpertKind:
    name: str
    module: str  # import path of the plugin module (build / rebuild / train ...)
    config_path: str  # "<module>:<dataclass>" of the params.yaml section <name>_expert

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    @property
    def config(self) -> type:
        module, name = self.config_path.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def section(self) -> str:
        return f"{self.name}_expert"


EXPERTS: dict[str, ExpertKind] = {}


def register_expert(kind: ExpertKind) -> ExpertKind:
    EXPERTS[kind.name] = kind
    return kind


register_expert(ExpertKind("text", "Step_4.text.plugin", "Step_4.text.config:TextExpertConfig"))
register_expert(ExpertKind("vision", "Step_4.vision.plugin", "Step_4.vision.config:VisionExpertConfig"))
register_expert(ExpertKind("tabular", "Step_4.tabular.plugin", "Step_4.tabular.config:TabularExpertConfig"))
register_expert(ExpertKind("temporal", "Step_4.temporal.plugin", "Step_4.temporal.config:TemporalExpertConfig"))


def modalities() -> tuple[str, ...]:
    """Every registered modality, in registration order (the fixed order of fusion masks and tokens)."""
    return tuple(EXPERTS)


def expert_kind(name: str) -> ExpertKind:
    if name not in EXPERTS:
        raise ValueError(f"unknown expert kind {name!r}; registered: {list(EXPERTS)}")
    return EXPERTS[name]


def create_expert(kind: str, cfg, meta: dict) -> Expert:
    """A new expert of `kind`: its encoder built from `cfg` (pretrained weights) plus an MLP head."""
    return make_expert(kind, expert_kind(kind).load().build(cfg, meta), cfg, meta)


def load_expert(folder: str | Path, device: str = "cpu") -> tuple[Expert, dict]:
    """Rebuild a saved expert (eval mode) and return it with its expert.json."""
    folder = Path(folder)
    if not (folder / "expert.json").is_file() or not (folder / "model.safetensors").is_file():
        raise PipelineError(f"{folder} is not a saved expert (expert.json and model.safetensors expected); "
                            "run `dvc repro` to train the experts")
    info = read_json(folder / "expert.json")
    encoder = expert_kind(info["modality"]).load().rebuild(info["encoder"], folder)
    head = info["head"]
    expert = Expert(modality=info["modality"], encoder=encoder, n_classes=head["n_classes"],
                    head_hidden=head["hidden"], dropout=head["dropout"], input_dropout=head.get("input_dropout", 0.0))
    expert.load_state_dict(load_file(str(folder / "model.safetensors")))
    return expert.to(device).eval(), info
