"""params.yaml section text_expert as dataclasses (no runtime code: importing this module is cheap)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from core.params import check
from Step_4.config import ShardExpertConfig


@dataclass
class DactConfig:
    """Adaptive depth (Step_4.text.dact): units after every layer, and how inference stops."""

    lam: float = field(default=0.006, metadata={"key": "lambda"})  # depth penalty: loss = NLL + λ · Σ_n p_n
    lr: float = 3e-4  # learning rate of the units (the backbone, when fine-tuned, and the baselines use train.lr)
    halting: Literal["sample", "batch", "none"] = "sample"  # inference: each meme stops / the batch stops / all layers
    unit_hidden: int = 128  # width of the projection each unit reads the pooled state through
    shared_projection: bool = False  # one projection for every layer instead of one per layer
    truncation_baselines: bool = True  # also train heads on the first k layers, k = 1..N, for the depth curve

    def __post_init__(self) -> None:
        check(self.lam >= 0, f"lambda must be >= 0, got {self.lam}")
        check(self.unit_hidden >= 1, "unit_hidden must be >= 1")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")


@dataclass
class TextExpertConfig(ShardExpertConfig):
    model: str = "bundled:all-minilm-l6-v2"  # 'bundled:<name>', a local folder, or a hub id
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = 48
    trainable_layers: int = 2  # finetune: top transformer layers to train (-1: all)
    layer_path: str = "auto"  # dotted path of the model's layer list (e.g. encoder.layer); auto: found by size
    projection: bool = False  # CLIP / SigLIP text tower: its projected, L2-normalised embedding as the feature
    adaptive: Literal["none", "dact"] = "none"  # dact: halt per meme after the layer that settles its answer
    dact: DactConfig = field(default_factory=DactConfig)
    # short texts: large batches; more than 4 loader workers read slower on the H200 (each tokenises little)
    CPU_EMBED_BATCH: ClassVar[int] = 128
    GPU_EMBED_BATCH: ClassVar[int] = 512
    GPU_WORKERS: ClassVar[int] = 4

    @property
    def trainable(self) -> int:
        return self.trainable_layers

    def __post_init__(self) -> None:
        super().__post_init__()
        check(8 <= self.max_length <= 512, f"max_length must be in [8, 512], got {self.max_length}")
        check(not (self.adaptive == "dact" and self.projection), "adaptive: dact runs a BERT-style encoder layer by "
              "layer; it does not combine with projection (CLIP / SigLIP towers)")
        check(not (self.adaptive == "dact" and self.runtime not in ("auto", "torch")),
              "adaptive: dact stops each meme after its own layer, which an exported graph cannot do; "
              "set text_expert.runtime: torch")
