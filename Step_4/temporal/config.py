"""params.yaml section temporal_expert as dataclasses (no runtime code: importing this module is cheap)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.params import check
from Step_4.config import TrainConfig


@dataclass
class TemporalExpertConfig:
    """The temporal expert: an encoder of the engagement series (hours x channels) trained end to end with its head."""

    architecture: Literal["cnn", "transformer"] = "cnn"
    out_dim: int = 64  # width of the embedding the fusion reads
    cnn: dict = field(default_factory=lambda: {"hidden": [32, 64, 64], "kernel": 5, "dropout": 0.1})
    transformer: dict = field(default_factory=lambda: {"d_model": 64, "n_heads": 4, "n_layers": 2, "dropout": 0.1})
    head_hidden: int = 64
    dropout: float = 0.1
    device: str = "auto"
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def options(self) -> dict:
        """Keyword options of the chosen architecture (Step_4.temporal.model)."""
        return {**(self.cnn if self.architecture == "cnn" else self.transformer), "out_dim": self.out_dim}

    def __post_init__(self) -> None:
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        check(self.out_dim >= 1 and self.head_hidden >= 1, "out_dim and head_hidden must be >= 1")
        for name, allowed in (("cnn", {"hidden", "kernel", "dropout"}), ("transformer", {"d_model", "n_heads", "n_layers",
                                                                                      "dropout"})):
            unknown = sorted(set(getattr(self, name)) - allowed)
            check(not unknown, f"{name}: unknown keys {unknown}; allowed: {sorted(allowed)}")
        check(self.cnn.get("kernel", 5) % 2 == 1, "cnn.kernel must be odd")
        d_model, heads = self.transformer.get("d_model", 64), self.transformer.get("n_heads", 4)
        check(d_model % heads == 0, f"transformer.d_model ({d_model}) must be divisible by n_heads ({heads})")
