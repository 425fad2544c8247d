"""The temporal expert: a series encoder (Step_4.temporal.model: 1D-CNN or transformer) over a meme's hourly
engagement, trained end to end with its head on every labelled row as tensors, once per seed.

Counts are scaled as log1p and standardised per channel with the train split's observed hours (kept in the
encoder, so a saved expert needs nothing else). A meme without a series is all missing hours: its features are
a constant and its `temporal_present` flag is False, so fusion masks it.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import PipelineError
from core.seed import seed_everything
from Step_1.series import SeriesConfig
from Step_3.reader import ShardReader
from Step_4.context import ExpertContext, FoldTrainer
from Step_4.engine import labelled_only
from Step_4.expert import Expert, make_expert
from Step_4.recipes import Run, TrainedExpert, fit_on_tensors, over_seeds
from Step_4.temporal.config import TemporalExpertConfig
from Step_4.temporal.model import create_series_encoder


def series_arrays(series: np.ndarray | None, steps: int, channels: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(counts (steps, channels) float32 with 0 at missing hours, observed (steps,) bool) of one decoded series."""
    if series is None:
        return np.zeros((steps, channels), np.float32), np.zeros(steps, bool)
    if series.shape != (steps, channels):
        raise PipelineError(f"{where}: the series has shape {series.shape}, the model expects ({steps}, {channels}); "
                            "rerun the shard stage, or train the temporal expert on these shards")
    observed = ~np.isnan(series).any(1)
    return np.where(observed[:, None], series, 0.0).astype(np.float32), observed


class SeriesFeatureEncoder(nn.Module):
    """A series encoder with the expert interface: log1p counts standardised per channel, the observed-hour mask."""

    reads_images = False
    reads_series = True  # shard loaders skip the series member unless an encoder reads it

    def __init__(self, *, architecture: str, steps: int, channels: list[str], options: dict,
                 center: list[float] | None = None, scale: list[float] | None = None):
        super().__init__()
        self.architecture, self.steps, self.channels, self.options = architecture, steps, list(channels), dict(options)
        self.net = create_series_encoder(architecture, channels=len(channels), steps=steps, **options)
        self.register_buffer("center", torch.tensor(center or [0.0] * len(channels), dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale or [1.0] * len(channels), dtype=torch.float32))

    @property
    def out_dim(self) -> int:
        return self.net.out_dim

    def fit_scaling(self, counts: torch.Tensor, observed: torch.Tensor) -> None:
        """Per-channel mean and std of log1p(counts) over the observed hours of (N, T, C) training series."""
        rows = torch.log1p(counts[observed])  # (observed hours, C)
        if len(rows) > 1:
            self.center.copy_(rows.mean(0))
            self.scale.copy_(rows.std(0).clamp(min=1e-3))

    def inputs(self, *, train: bool, meta: dict) -> tuple[Callable, Callable]:
        steps, channels = self.steps, len(self.channels)

        def transform(sample: dict) -> tuple:
            counts, observed = series_arrays(sample.get("series"), steps, channels, f"sample {sample.get('id')}")
            return counts, observed

        def collate(rows: list[tuple]) -> dict:
            counts, observed = zip(*rows)
            observed = torch.from_numpy(np.stack(observed))
            return {"series": torch.from_numpy(np.stack(counts)), "observed": observed,
                    "temporal_present": observed.any(1)}

        return transform, collate

    def features(self, batch: dict) -> torch.Tensor:
        observed = batch["observed"]
        scaled = (torch.log1p(batch["series"]) - self.center) / self.scale
        return self.net(scaled * observed.unsqueeze(-1).to(scaled.dtype), observed)

    def freeze(self, trainable: int = 0) -> None:
        """Small: trains whole (any trainable != 0) or not at all."""
        self.requires_grad_(trainable != 0)

    def to_config(self) -> dict:
        return {"architecture": self.architecture, "steps": self.steps, "channels": self.channels,
                "options": self.options, "center": self.center.tolist(), "scale": self.scale.tolist()}


def series_shape(meta: dict) -> tuple[int, list[str]]:
    """(hours, channel names) of the shard set (meta.json 'series'; older shard sets: the default shape)."""
    info = meta.get("series") or {}
    return int(info.get("steps", SeriesConfig().steps)), list(info.get("channels", SeriesConfig().channels))


def build(cfg: TemporalExpertConfig, meta: dict) -> SeriesFeatureEncoder:
    steps, channels = series_shape(meta)
    return SeriesFeatureEncoder(architecture=cfg.architecture, steps=steps, channels=channels, options=cfg.options)


def rebuild(config: dict, folder: Path | None) -> SeriesFeatureEncoder:
    return SeriesFeatureEncoder(**config)


def load_series_split(reader: ShardReader, split: str, steps: int, channels: int) -> dict:
    """{'id', 'series' (N, T, C), 'observed' (N, T), 'label', 'true_label', 'temporal_present'} sorted by id."""
    rows = sorted(reader.samples(split, decode_images=False), key=lambda s: s["id"])
    arrays = [series_arrays(r["series"], steps, channels, f"{split} sample {r['id']}") for r in rows]
    counts = torch.from_numpy(np.stack([a[0] for a in arrays])) if rows else torch.zeros(0, steps, channels)
    observed = torch.from_numpy(np.stack([a[1] for a in arrays])) if rows else torch.zeros(0, steps, dtype=torch.bool)
    return {"id": [r["id"] for r in rows], "series": counts, "observed": observed,
            "label": torch.tensor([int(r["meta"]["label"]) for r in rows], dtype=torch.long),
            "true_label": torch.tensor([int(r["meta"].get("true_label", -1)) for r in rows], dtype=torch.long),
            "temporal_present": observed.any(1)}


def fit_one(cfg: TemporalExpertConfig, t, meta: dict, splits: dict, device: str, live, desc: str = "temporal"):
    """Train a fresh expert on splits['train'] (early stopping on splits['val'] and ['val_unseen'], scaling and class weights from the
    rows it trains on); returns (expert, id-sorted features and logits of every split given, the fit)."""
    seed_everything(t.seed)
    encoder = build(cfg, meta)
    train = labelled_only(splits["train"])
    encoder.fit_scaling(train["series"], train["observed"])
    expert = make_expert("temporal", encoder, cfg, meta)
    data, result = fit_on_tensors(expert, t, splits, meta, device, live, desc)
    return expert, data, result


def train(cfg: TemporalExpertConfig, ctx: ExpertContext) -> TrainedExpert:
    """The temporal expert, once per seed in cfg.train.seeds."""
    steps, channels = series_shape(ctx.meta)
    splits = {s: load_series_split(ctx.reader, s, steps, len(channels)) for s in ctx.splits}
    if not splits["train"]["temporal_present"].any():  # still built, like tabular without fields: fusion masks it
        print("warning: no training meme has an engagement series, so the temporal expert learns nothing and fusion "
              "treats the modality as missing; import series with a source's `series` column (docs/own-data.md)"
              " or leave temporal out of fusion.modalities")

    def run_one(seed: int) -> Run:
        return fit_one(cfg, cfg.train.for_seed(seed), ctx.meta, splits, ctx.device,
                       ctx.live if seed == cfg.train.seeds[0] else None)

    trained = over_seeds(cfg.train.seeds, run_one)
    trained.extra = {"architecture": cfg.architecture,
                     "with_series": {s: int(d["temporal_present"].sum()) for s, d in splits.items()}}
    return trained


def fold_trainer(cfg: TemporalExpertConfig, ctx: ExpertContext) -> FoldTrainer:
    """How cross-validation retrains the temporal expert inside a fold (series scaling, class weights and early
    stopping from the fold's rows)."""
    steps, channels = series_shape(ctx.meta)

    def fit(splits: dict, seed: int) -> Expert:
        return fit_one(cfg, cfg.train.for_seed(seed), ctx.meta, splits, ctx.device, None, desc="crossval temporal")[0]

    return FoldTrainer(load=lambda split: load_series_split(ctx.reader, split, steps, len(channels)), fit=fit)


def features_learn_labels(cfg: TemporalExpertConfig) -> bool:
    return True
