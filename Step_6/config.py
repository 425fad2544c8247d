"""The evaluate stage's settings as dataclasses (no runtime code): the `evaluate` section of params.yaml and the
paths on its command line."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.params import check
from Step_3.splits import EVALUATED

IMAGE_CORRUPTIONS = ("jpeg", "blur", "noise", "downscale", "rotate", "crop", "brightness", "border")
TEXT_CORRUPTIONS = ("ocr_noise", "dropped_words")
MISSING = ("missing_text", "missing_vision", "missing_tabular", "missing_temporal")
CONDITIONS = IMAGE_CORRUPTIONS + TEXT_CORRUPTIONS + MISSING


@dataclass
class RobustnessConfig:
    """Corruptions applied to a seeded sample of each split named (of those the data has), run through OCR and
    the models."""

    splits: list[str] = field(default_factory=lambda: ["val", "test_seen", "test_unseen"])
    samples_per_split: int = 120
    seed: int = 0
    conditions: list[str] = field(default_factory=lambda: list(CONDITIONS))
    jpeg_quality: int = 15
    blur_radius: float = 2.0  # Gaussian blur radius in pixels
    noise_std: float = 20.0  # Gaussian noise, in 0-255 pixel units
    rotate_degrees: float = 5.0  # each image turns by +/- this angle (sign drawn per image)
    crop_fraction: float = 0.10  # share of the width and of the height cut away (offset drawn per image)
    brightness: float = 1.5  # brightness factor (1 = unchanged)
    border_fraction: float = 0.08  # screenshot frame: side margins, and a status bar twice as high
    char_confusion_rate: float = 0.08  # OCR-like noise: share of characters swapped for a look-alike
    word_drop_rate: float = 0.25  # share of words dropped (at least one kept)
    ocr_workers: int = 2
    batch_size: int = 32

    def __post_init__(self) -> None:
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        check(not unknown, f"unknown robustness conditions {unknown}; allowed: {list(CONDITIONS)}")
        check(self.samples_per_split >= 10, "samples_per_split must be >= 10")
        check(bool(self.splits) and set(self.splits) <= set(EVALUATED),
              f"splits must name evaluated splits ({', '.join(EVALUATED)}), got {self.splits}")
        check(1 <= self.jpeg_quality <= 95, "jpeg_quality must be in [1, 95]")
        check(0 <= self.crop_fraction < 0.5 and 0 <= self.border_fraction < 0.3, "crop/border fraction out of range")
        check(0 <= self.char_confusion_rate <= 1 and 0 <= self.word_drop_rate < 1, "text noise rates out of range")
        check(self.ocr_workers >= 1 and self.batch_size >= 1, "ocr_workers and batch_size must be >= 1")


@dataclass
class EvaluateConfig:
    calibration: str = "temperature"  # temperature | temperature_bias (also a per-class bias, fitted with T)
    # the splits calibration (see calibration_fit) and operating points (pooled) are fitted on (those the data holds; val always)
    fit_on: list[str] = field(default_factory=lambda: ["val"])
    # pooled: one temperature for the fit_on rows pooled; worst_split: the temperature minimising the largest NLL
    # among the fit_on splits, so new material (val_unseen) is not outvoted by familiar memes (temperature only)
    calibration_fit: str = "pooled"
    ece_bins: int = 15
    min_precision: float = 0.90  # operating point 'precision_90': the lowest val threshold reaching it
    min_recall: float = 0.90  # operating point 'recall_90': the highest val threshold keeping it
    # operating point 'max_f1_unseen': the highest F1 of the positive class on val_unseen alone (new material)
    unseen_point: bool = True
    bootstrap: int = 1000  # resamples for every 95 % interval
    seed: int = 0
    slice_min_size: int = 20  # smaller slices are listed but never named the worst
    caption_length_bins: list[int] = field(default_factory=lambda: [6, 10])  # words: <=6, 7-10, >10
    mistakes: int = 20  # most confident mistakes shown per split
    device: str = "cpu"
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)

    def __post_init__(self) -> None:
        check(self.calibration in ("temperature", "temperature_bias"),
              f"calibration must be 'temperature' or 'temperature_bias', got {self.calibration!r}")
        check(self.calibration_fit in ("pooled", "worst_split"),
              f"calibration_fit must be 'pooled' or 'worst_split', got {self.calibration_fit!r}")
        check(self.calibration_fit == "pooled" or self.calibration == "temperature",
              "calibration_fit: worst_split fits a temperature alone; set calibration: temperature")
        check(self.ece_bins >= 2, "ece_bins must be >= 2")
        check("val" in self.fit_on and set(self.fit_on) <= {"val", "val_unseen"},
              f"fit_on: val, optionally with val_unseen (never a test split), got {self.fit_on}")
        check(0 < self.min_precision < 1 and 0 < self.min_recall < 1, "min_precision / min_recall must be in (0, 1)")
        check(self.bootstrap >= 100, "bootstrap must be >= 100 resamples")
        check(self.caption_length_bins == sorted(self.caption_length_bins), "caption_length_bins must be increasing")


@dataclass(frozen=True)
class EvaluatePaths:
    """The evaluate stage's inputs and outputs, as given on its command line (see Step_6.evaluate)."""

    shards: str  # shard folder or URL prefix (labels, slices, images)
    embeddings: str  # the experts' cached embeddings
    experts: str  # folder holding <modality>_expert/
    fusion_models: str  # folder holding <method>/
    comparison: str  # which models exist, best picks
    cache: str  # corrupted images, their OCR and features
    metrics: str  # output: quality figures
    report: str  # output: everything (report stage input)
    run_report: str  # output: seconds, cache counts
    calibration: str  # output: temperatures, thresholds
    plots: str  # output: reliability diagrams
