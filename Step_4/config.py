"""params.yaml sections of Step 4 as dataclasses."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.params import check
from Step_4.training import TrainConfig


@dataclass
class TextExpertConfig:
    model: str = "bundled:all-minilm-l6-v2"  # 'bundled:<name>', a local folder, or a hub id
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = 48
    mode: Literal["frozen", "finetune"] = "frozen"
    trainable_layers: int = 2  # finetune: top transformer layers to train (-1: all)
    head_hidden: int = 256
    dropout: float = 0.2
    embed_batch_size: int = 128
    num_workers: int = 0
    device: str = "auto"
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check(8 <= self.max_length <= 512, f"max_length must be in [8, 512], got {self.max_length}")
        check(self.trainable_layers >= -1, "trainable_layers must be >= -1")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        check(self.head_hidden >= 1 and self.embed_batch_size >= 1 and self.num_workers >= 0, "sizes must be positive")


@dataclass
class VisionExpertConfig:
    model: str = "tf_efficientnet_lite0"  # any timm model name
    weights: str = "bundled"  # bundled | hub | none | path to a weights file
    mode: Literal["frozen", "finetune"] = "frozen"
    trainable_blocks: int = 1  # finetune: last backbone stages to train (-1: all)
    head_hidden: int = 256
    dropout: float = 0.2
    embed_batch_size: int = 64
    num_workers: int = 0
    device: str = "auto"
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check(self.trainable_blocks >= -1, "trainable_blocks must be >= -1")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        check(self.head_hidden >= 1 and self.embed_batch_size >= 1 and self.num_workers >= 0, "sizes must be positive")


@dataclass
class TabularModelConfig:
    """FT-Transformer architecture shared by MFM pretraining and the tabular expert."""

    d_block: int = 64
    n_blocks: int = 2
    attention_n_heads: int = 4
    attention_dropout: float = 0.1
    ffn_dropout: float = 0.1
    residual_dropout: float = 0.0

    def __post_init__(self) -> None:
        check(self.d_block % self.attention_n_heads == 0, "d_block must be divisible by attention_n_heads")
        check(self.n_blocks >= 1, "n_blocks must be >= 1")


@dataclass
class TabularPretrainConfig:
    mask_fraction: float = 0.15
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check(0 < self.mask_fraction < 1, f"mask_fraction must be in (0, 1), got {self.mask_fraction}")
        check(self.epochs >= 1 and self.batch_size >= 1 and self.lr > 0, "epochs, batch_size, lr must be positive")


@dataclass
class TabularExpertConfig:
    pretrained: bool = True  # start from the MFM-pretrained encoder
    head_hidden: int = 64
    dropout: float = 0.1
    device: str = "auto"
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
