"""params.yaml sections of Step 4 as dataclasses (no runtime code: importing this module is cheap)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from core import threads
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
    # the weights restored at the end: the mean of the `average_best` best validation epochs' weights (1: the best
    # epoch's alone); averaging several makes the result depend less on which epoch a noisy score happened to pick
    average_best: int = 1
    seeds: list[int] = field(default_factory=lambda: [0])  # one model per seed; metrics report mean and std
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # training: auto = bf16 autocast on CUDA, fp32 on the CPU
    determinism: Literal["strict", "fast"] = "strict"  # fast: cudnn.benchmark and any CUDA kernel (CPU stays strict)

    @property
    def seed(self) -> int:
        """The seed of this run (the first of `seeds`; `for_seed` makes one run's config)."""
        return self.seeds[0]

    def for_seed(self, seed: int) -> TrainConfig:
        return dataclasses.replace(self, seeds=[seed])

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, "weight_decay must be >= 0")
        check(0 <= self.warmup_fraction < 1, "warmup_fraction must be in [0, 1)")
        check(self.grad_clip >= 0, "grad_clip must be >= 0 (0 disables clipping)")
        check(self.patience >= 1, f"patience must be >= 1, got {self.patience}")
        check(self.average_best >= 1, f"average_best must be >= 1, got {self.average_best}")
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
    return max(1, min(on_gpu, threads.cores() - 1))


@dataclass
class ShardExpertConfig:
    """What every expert trained from the shards shares (text, vision, and any new modality)."""

    mode: Literal["frozen", "finetune"] = "frozen"  # frozen: cached features + head; finetune: top layers too
    head_hidden: int = 256
    dropout: float = 0.2
    input_dropout: float = 0.0  # dropout on the features the head reads (training only): heads that transfer
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

    def for_device(self, device: str) -> ShardExpertConfig:
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
        check(0 <= self.input_dropout < 1, "input_dropout must be in [0, 1)")
        check(self.head_hidden >= 1, f"head_hidden must be >= 1, got {self.head_hidden}")
        check(self.embed_batch_size == "auto" or self.embed_batch_size >= 1,
              f"embed_batch_size must be >= 1 or auto, got {self.embed_batch_size}")
        check(self.num_workers == "auto" or self.num_workers >= 0,
              f"num_workers must be >= 0 or auto, got {self.num_workers}")
