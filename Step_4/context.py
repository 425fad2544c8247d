"""What an expert's recipe needs besides its own params section: the shards, the device, the live logger, the
MFM encoder and the feature cache."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from Step_3.reader import ShardReader, filled_splits


@dataclass
class ExpertContext:
    """What a recipe needs besides the expert's own params section."""

    reader: ShardReader
    device: str
    live: Any = None
    mfm_dir: Path | None = None  # tabular: the MFM-pretrained encoder
    feature_cache: Path | None = None  # frozen encoders: features by content hash (data/feature_cache/<modality>)

    @property
    def meta(self) -> dict:
        return self.reader.meta

    @property
    def splits(self) -> list[str]:
        return filled_splits(self.meta)


@dataclass
class FoldTrainer:
    """How cross-validation retrains an expert whose features learn from labels, inside one fold: `load(split)`
    gives a split's rows as tensors (with 'id', sorted), `fit(splits, seed)` trains a fresh expert on
    splits['train'] with early stopping on splits['val'] and returns it. A plugin's `fold_trainer(cfg, ctx)`."""

    load: Callable[[str], dict]
    fit: Callable[[dict, int], Any]
