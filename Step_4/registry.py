"""The expert registry: one entry per modality, `create_expert(kind, cfg, meta)` as timm's create_model.

An entry names the module that builds the encoder (`build(cfg, meta)`, `rebuild(config, folder)`, optionally
its own `train(cfg, ctx)`) and the dataclass of its params section `<kind>_expert`. ARCHITECTURE.md lists
the encoder interface and shows how to add a modality.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from Step_4.config import TabularExpertConfig, TemporalExpertConfig, TextExpertConfig, VisionExpertConfig


@dataclass(frozen=True)
class ExpertKind:
    name: str
    module: str  # import path of the module with build / rebuild (/ train)
    config: type  # dataclass of the params.yaml section <name>_expert

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    @property
    def section(self) -> str:
        return f"{self.name}_expert"


EXPERTS: dict[str, ExpertKind] = {}


def register_expert(kind: ExpertKind) -> ExpertKind:
    EXPERTS[kind.name] = kind
    return kind


register_expert(ExpertKind("text", "Step_4.text_encoder", TextExpertConfig))
register_expert(ExpertKind("vision", "Step_4.vision_encoder", VisionExpertConfig))
register_expert(ExpertKind("tabular", "Step_4.tabular_encoder", TabularExpertConfig))
register_expert(ExpertKind("temporal", "Step_4.temporal_encoder", TemporalExpertConfig))


def modalities() -> tuple[str, ...]:
    """Every registered modality, in registration order (the fixed order of fusion masks and tokens)."""
    return tuple(EXPERTS)


def expert_kind(name: str) -> ExpertKind:
    if name not in EXPERTS:
        raise ValueError(f"unknown expert kind {name!r}; registered: {list(EXPERTS)}")
    return EXPERTS[name]


def create_expert(kind: str, cfg, meta: dict):
    """A new expert of `kind`: its encoder built from `cfg` (pretrained weights) plus an MLP head."""
    from Step_4.expert import Expert

    encoder = expert_kind(kind).load().build(cfg, meta)
    return Expert(modality=kind, encoder=encoder, n_classes=len(meta["classes"]), head_hidden=cfg.head_hidden,
                  dropout=cfg.dropout)
