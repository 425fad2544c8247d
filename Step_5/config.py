"""The `fusion` and `crossval` sections of params.yaml as dataclasses (no runtime code of their own)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.params import check
from Step_4.config import TrainConfig, loader_workers
from Step_4.registry import modalities
from Step_4.vision.config import VisionExpertConfig


@dataclass
class FinetuneConfig:
    """End-to-end fine-tuning from the shards: the experts' top layer groups train with the fusion head."""

    enabled: bool = False
    text_layers: int = 1  # top transformer layers of the text expert to train (-1: all, 0: frozen)
    vision_blocks: int = 1  # top layer groups of the vision expert to train (-1: all, 0: frozen)
    tabular: bool = True  # train the whole tabular expert
    epochs: int = 3
    batch_size: int = 32
    lr: float = 0.0001
    num_workers: int | Literal["auto"] = "auto"  # shard-loader processes; auto: none on the CPU, as vision on CUDA

    def __post_init__(self) -> None:
        check(self.text_layers >= -1 and self.vision_blocks >= -1, "text_layers / vision_blocks must be >= -1")
        check(self.epochs >= 1 and self.batch_size >= 1 and self.lr > 0, "epochs, batch_size, lr must be positive")
        check(self.num_workers == "auto" or self.num_workers >= 0,
              f"num_workers must be >= 0 or auto, got {self.num_workers}")

    def workers(self, device: str) -> int:
        """Loader processes on `device` (see Step_4.config.loader_workers): on CUDA as many as the vision expert's,
        since images are what the loader decodes."""
        return loader_workers(self.num_workers, device, on_gpu=VisionExpertConfig.GPU_WORKERS)

    def trainable(self, modality: str) -> int:
        """Top layer groups of that expert's encoder to train (-1: all, 0: none)."""
        return {"text": self.text_layers, "vision": self.vision_blocks}.get(modality, -1 if self.tabular else 0)


@dataclass
class FusionConfig:
    modalities: list[str] = field(default_factory=lambda: list(modalities()))
    modality_dropout: float = 0.15  # per-modality drop probability in training (at least one kept)
    feature_dropout: float = 0.0  # per-value drop probability of the experts' features in training
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    train: TrainConfig = field(default_factory=TrainConfig)
    # each head's keyword arguments, checked against its constructor by Step_5.models.fusion_params
    concat: dict[str, Any] = field(default_factory=dict)
    gated: dict[str, Any] = field(default_factory=dict)
    transformer: dict[str, Any] = field(default_factory=dict)
    late: dict[str, Any] = field(default_factory=dict)
    align: dict[str, Any] = field(default_factory=dict)
    cross: dict[str, Any] = field(default_factory=dict)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # end to end from shards (GPU)

    def __post_init__(self) -> None:
        unknown = [m for m in self.modalities if m not in modalities()]
        check(not unknown, f"unknown modalities {unknown}; allowed: {list(modalities())}")
        check(len(set(self.modalities)) == len(self.modalities), f"modalities repeat: {self.modalities}")
        self.modalities = [m for m in modalities() if m in self.modalities]  # one fixed order for masks and tokens
        check(len(self.modalities) >= 2, "fusion needs at least two modalities")
        check(0 <= self.modality_dropout < 1, "modality_dropout must be in [0, 1)")
        check(0 <= self.feature_dropout < 1, "feature_dropout must be in [0, 1)")


@dataclass
class CrossvalConfig:
    folds: int = 5  # k >= 3 (one fold scores, one stops early, the rest train); = number of groups: leave-one-group-out
    group_by: str = "meta.frame"  # a sample field: group, source, meta.<key> or tabular.<key>; empty values: own group
    splits: list[str] = field(default_factory=lambda: ["train", "val"])  # pooled into the folds
    modalities: list[str] = field(default_factory=lambda: ["text", "vision", "tabular"])  # what the fusion heads read
    models: list[str] = field(default_factory=lambda: ["text", "vision", "tabular", "concat", "gated"])
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        check(self.folds >= 3, f"folds must be >= 3 (one scores, one stops early, the rest train), got {self.folds}")
        check(bool(self.splits) and not {"test_seen", "test_unseen"} & set(self.splits),
              "splits: the splits to pool (train, val); test_seen and test_unseen are scored, never pooled")
        check(bool(self.models), "models: at least one expert or fusion method")
        unknown = [m for m in self.modalities if m not in modalities()]
        check(not unknown, f"modalities: unknown {unknown}; allowed: {list(modalities())}")
        self.modalities = [m for m in modalities() if m in self.modalities]  # the order fusion masks use
        experts = [m for m in self.models if m in modalities()]
        check(len(self.modalities) >= 2 or len(experts) == len(self.models),
              "modalities: fusion methods in models need at least two modalities")
