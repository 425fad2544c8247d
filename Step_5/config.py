"""The `fusion` section of params.yaml as dataclasses."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.params import check
from Step_4.training import TrainConfig
from Step_5.finetune import FinetuneConfig
from Step_5.models import MODALITIES


@dataclass
class ConcatConfig:
    hidden: int = 256
    dropout: float = 0.3


@dataclass
class GatedConfig:
    d_fusion: int = 128
    router_hidden: int = 64
    temperature: float = 1.0
    dropout: float = 0.2
    balance_weight: float = 0.01

    def __post_init__(self) -> None:
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        check(self.balance_weight >= 0, "balance_weight must be >= 0")


@dataclass
class TransformerConfig:
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    dropout: float = 0.1
    use_cls: bool = False

    def __post_init__(self) -> None:
        check(self.d_model % self.n_heads == 0, "d_model must be divisible by n_heads")


@dataclass
class LateConfig:
    pass


@dataclass
class FusionConfig:
    modalities: list[str] = field(default_factory=lambda: list(MODALITIES))
    modality_dropout: float = 0.15  # per-modality drop probability in training (at least one kept)
    train: TrainConfig = field(default_factory=TrainConfig)
    concat: ConcatConfig = field(default_factory=ConcatConfig)
    gated: GatedConfig = field(default_factory=GatedConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    late: LateConfig = field(default_factory=LateConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # end to end from shards (GPU)

    def __post_init__(self) -> None:
        unknown = [m for m in self.modalities if m not in MODALITIES]
        check(not unknown, f"unknown modalities {unknown}; allowed: {list(MODALITIES)}")
        check(len(set(self.modalities)) == len(self.modalities), f"modalities repeat: {self.modalities}")
        self.modalities = [m for m in MODALITIES if m in self.modalities]  # one fixed order for masks and tokens
        check(len(self.modalities) >= 2, "fusion needs at least two modalities")
        check(0 <= self.modality_dropout < 1, "modality_dropout must be in [0, 1)")
