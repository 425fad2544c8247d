"""params.yaml sections of Step 4 as dataclasses (no runtime code: importing this module is cheap)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from core.params import check


@dataclass
class TrainConfig:
    """How the engine trains a model: optimiser, schedule, loss and early stopping."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    # weighted_ce: class weights n / (C · n_c) from the train split; weighted_bce (two classes): binary cross-entropy
    # on the positive class's logit margin with pos_weight = negatives / positives of the train split; focal:
    # focal_gamma, weighted by focal_alpha for the positive class (1 - alpha for the other) or, when unset, by
    # the class weights
    loss: Literal["weighted_ce", "ce", "focal", "weighted_bce"] = "weighted_ce"
    focal_gamma: float = 2.0
    focal_alpha: float | None = None
    grad_clip: float = 1.0
    early_stop_metric: Literal["macro_f1", "auroc"] = "auroc"
    patience: int = 5
    seeds: list[int] = field(default_factory=lambda: [0])  # one model per seed; metrics report mean and std
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # training: auto = bf16 autocast on CUDA, fp32 on the CPU
    determinism: Literal["strict", "fast"] = "strict"  # fast: cudnn.benchmark and any CUDA kernel (CPU stays strict)

    @property
    def seed(self) -> int:
        """The seed of this run (the first of `seeds`; `for_seed` makes one run's config)."""
        return self.seeds[0]

    def for_seed(self, seed: int) -> "TrainConfig":
        return dataclasses.replace(self, seeds=[seed])

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, "weight_decay must be >= 0")
        check(0 <= self.warmup_fraction < 1, "warmup_fraction must be in [0, 1)")
        check(self.grad_clip >= 0, "grad_clip must be >= 0 (0 disables clipping)")
        check(self.patience >= 1, f"patience must be >= 1, got {self.patience}")
        check(self.focal_gamma >= 0, f"focal_gamma must be >= 0, got {self.focal_gamma}")
        check(self.focal_alpha is None or 0 < self.focal_alpha < 1, f"focal_alpha must be in (0, 1), got {self.focal_alpha}")
        check(len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds), f"seeds must be distinct: {self.seeds}")


def loader_workers(setting: int | str, device: str, on_gpu: int) -> int:
    """Shard-loader processes for a `num_workers` setting: a number as given; 'auto' is none on the CPU (the
    encoder needs every core there) and `on_gpu` on CUDA, at most the cores this process may use, less one."""
    if setting != "auto":
        return int(setting)
    if not str(device).startswith("cuda"):
        return 0
    from core.threads import cores

    return max(1, min(on_gpu, cores() - 1))


@dataclass
class ShardExpertConfig:
    """What every expert trained from the shards shares (text, vision, and any new modality)."""

    mode: Literal["frozen", "finetune"] = "frozen"  # frozen: cached features + head; finetune: top layers too
    head_hidden: int = 256
    dropout: float = 0.2
    # feature extraction's batch and shard-loader processes; auto: the sizes below for the device (`for_device`)
    embed_batch_size: int | Literal["auto"] = "auto"
    num_workers: int | Literal["auto"] = "auto"
    device: str = "auto"
    # where features are extracted (auto: openvino on the CPU, torch on CUDA; Step_4.runtime)
    runtime: Literal["auto", "torch", "openvino", "onnxruntime"] = "torch"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on CUDA, fp32 on the CPU (Step_4.runtime)
    train: TrainConfig = field(default_factory=TrainConfig)

    # what 'auto' means: on the CPU the encoder is the bottleneck and loader processes would take its cores; on a
    # GPU the loader is, so workers decode beside it (measured on an H200 with 16 cores; capped by the cores here)
    CPU_EMBED_BATCH: ClassVar[int] = 64
    GPU_EMBED_BATCH: ClassVar[int] = 256
    GPU_WORKERS: ClassVar[int] = 8

    @property
    def trainable(self) -> int:
        """Top layer groups of the encoder that fine-tuning trains (-1: all)."""
        raise NotImplementedError

    def for_device(self, device: str) -> "ShardExpertConfig":
        """This config with 'auto' sizes resolved for `device`: on the CPU, CPU_EMBED_BATCH and no loader workers;
        on CUDA, GPU_EMBED_BATCH and GPU_WORKERS workers (at most the cores this process may use, less one)."""
        batch = self.embed_batch_size
        if batch == "auto":
            batch = self.GPU_EMBED_BATCH if str(device).startswith("cuda") else self.CPU_EMBED_BATCH
        return dataclasses.replace(self, embed_batch_size=batch,
                                   num_workers=loader_workers(self.num_workers, device, self.GPU_WORKERS))

    def __post_init__(self) -> None:
        check(self.trainable >= -1, "the number of trainable layers must be >= -1")
        check(self.runtime in ("auto", "torch") or not self.device.startswith("cuda"),
              f"runtime {self.runtime} runs on the CPU; with device {self.device} use runtime: torch")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        check(self.head_hidden >= 1, f"head_hidden must be >= 1, got {self.head_hidden}")
        check(self.embed_batch_size == "auto" or self.embed_batch_size >= 1,
              f"embed_batch_size must be >= 1 or auto, got {self.embed_batch_size}")
        check(self.num_workers == "auto" or self.num_workers >= 0,
              f"num_workers must be >= 0 or auto, got {self.num_workers}")


@dataclass
class DactConfig:
    """Adaptive depth (Step_4.dact): units after every layer, and how inference stops."""

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


@dataclass
class VisionExpertConfig(ShardExpertConfig):
    model: str = "tf_efficientnet_lite0"  # any timm model name, or hf:<CLIP / SigLIP folder or hub id>
    weights: str = "bundled"  # timm: bundled | hub | none | path to a weights file; hf: pretrained | none
    projection: bool = False  # hf: CLIP / SigLIP image tower's projected, L2-normalised embedding
    trainable_blocks: int = 1  # finetune: top layer groups (timm group_matcher stages) to train (-1: all)

    @property
    def trainable(self) -> int:
        return self.trainable_blocks


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
        """Keyword options of the chosen architecture (Step_4.temporal_model)."""
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
