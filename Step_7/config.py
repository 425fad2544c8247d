"""The `serve` section of params.yaml: the HTTP service, the review queue and the label store (no runtime code)."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.params import check

QUEUE_ORDERS = ("uncertain", "disagreement", "newest", "label_issue")


@dataclass
class EnqueueConfig:
    """Which scored traffic joins the review queue."""

    flagged: bool = True            # every meme flagged at the operating point
    uncertain_margin: float = 0.15  # and every meme whose calibrated probability lies this close to the threshold

    def __post_init__(self) -> None:
        check(0.0 <= self.uncertain_margin <= 1.0, f"uncertain_margin must be in [0, 1], got {self.uncertain_margin}")


@dataclass
class ServeConfig:
    """`make serve`: host and port (flags and env MODERATION_HOST / MODERATION_PORT override), the model, batching,
    input limits, the label store and the review queue."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "best"                # a fusion folder, or 'best': metrics/comparison.json's best_fusion
    models_dir: str = "models/mm_fusion"
    comparison: str = "metrics/comparison.json"
    operating_point: str = "max_f1"    # threshold from models/calibration.json ('' for none)
    memory: str = "models/memory"      # labelled memory folder ('' for none)
    memory_feedback: bool = True       # a reviewed meme joins the memory (and memory.added) at once
    max_batch_size: int = 16           # micro-batching: a batch closes at this many memes ...
    max_wait_ms: float = 10.0          # ... or this long after its first meme arrived
    ocr_workers: int = 2               # OCR batches at once (one tesseract process per batch)
    max_body_bytes: int = 10_000_000   # larger request bodies get 413
    max_pixels: int = 40_000_000       # larger images get 413 (decompression-bomb guard)
    max_batch_items: int = 64          # images per /v1/predict/batch request
    db_url: str = "sqlite:///data/reviews/labels.db"   # or postgresql+psycopg://user:pass@host/db
    reviewers_file: str = "data/reviews/reviewers.json"  # hashed reviewer tokens (python -m Step_7.auth add)
    queue_order: str = "uncertain"     # uncertain | disagreement | newest | label_issue
    session_hours: float = 12.0        # review-page login lifetime
    export_dir: str = "data/raw/reviews"  # reviewed memes as a `reviews` source (python -m Step_7.export)
    enqueue: EnqueueConfig = field(default_factory=EnqueueConfig)

    def __post_init__(self) -> None:
        check(1 <= self.port <= 65535, f"port must be in 1..65535, got {self.port}")
        check(self.max_batch_size >= 1, f"max_batch_size must be >= 1, got {self.max_batch_size}")
        check(self.max_wait_ms >= 0, f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        check(self.ocr_workers >= 1, f"ocr_workers must be >= 1, got {self.ocr_workers}")
        check(self.max_body_bytes >= 1024, f"max_body_bytes must be >= 1024, got {self.max_body_bytes}")
        check(self.max_pixels >= 1, f"max_pixels must be >= 1, got {self.max_pixels}")
        check(self.max_batch_items >= 1, f"max_batch_items must be >= 1, got {self.max_batch_items}")
        check(self.queue_order in QUEUE_ORDERS, f"queue_order must be one of {QUEUE_ORDERS}, got {self.queue_order!r}")
        check(self.session_hours > 0, f"session_hours must be > 0, got {self.session_hours}")
