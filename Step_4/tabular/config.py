"""params.yaml section tabular_model, tabular_pretrain and tabular_expert as dataclasses (no runtime code: importing this module is cheap)."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.params import check
from Step_4.config import TrainConfig


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

    def train_config(self) -> TrainConfig:
        """The engine's settings for pretraining: 5 % warm-up, clipping at 1, the best epoch kept, no early stop."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                           warmup_fraction=0.05, grad_clip=1.0, patience=self.epochs, seeds=[self.seed])

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
    model: TabularModelConfig = field(default_factory=TabularModelConfig, metadata={"section": "tabular_model"})

    def __post_init__(self) -> None:
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
