"""The tabular expert: an FT-Transformer over the metadata fields, trained end to end on all rows as tensors,
initialised from MFM pretraining when tabular_expert.pretrained is on (the other variant is reported beside it)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file

from core.errors import PipelineError
from core.files import read_json
from core.seed import seed_everything
from Step_3.tabular import TabularEncoder
from Step_4.config import TabularExpertConfig, TabularModelConfig
from Step_4.expert import Expert
from Step_4.recipes import ExpertContext, Run, TrainedExpert, fit_on_tensors, over_seeds
from Step_4.report import summarize, truth_of
from Step_4.tabular_data import load_tabular_split
from Step_4.tabular_model import FTConfig, FTTransformerEncoder, parameter_groups


class TabularFeatureEncoder(FTTransformerEncoder):
    """FTTransformerEncoder with the expert interface: inputs from shard samples, features from a batch."""

    def inputs(self, *, train: bool, meta: dict) -> tuple[Callable, Callable]:
        tabular = TabularEncoder(meta["tabular"])

        def transform(sample: dict) -> tuple:
            row = sample["meta"].get("tabular") or {}
            return (*tabular.encode(row), not tabular.is_empty(row))

        def collate(rows: list[tuple]) -> dict:
            x_num, missing, x_cat, present = zip(*rows)
            return {"x_num": torch.from_numpy(np.stack(x_num)), "missing": torch.from_numpy(np.stack(missing)),
                    "x_cat": torch.from_numpy(np.stack(x_cat)), "tabular_present": torch.tensor(present)}

        return transform, collate

    def features(self, batch: dict) -> torch.Tensor:
        return self(batch["x_num"], batch["missing"], batch["x_cat"])

    def freeze(self, trainable: int = 0) -> None:
        """The FT-Transformer is small: it trains whole (any trainable != 0) or not at all."""
        self.requires_grad_(trainable != 0)

    def to_config(self) -> dict:
        return dataclasses.asdict(self.config)


def ft_config(model_cfg: TabularModelConfig, tabular: TabularEncoder) -> FTConfig:
    return FTConfig(n_numeric=tabular.n_numeric, cardinalities=tabular.cardinalities,
                    **dataclasses.asdict(model_cfg))


def build(cfg: TabularExpertConfig, meta: dict) -> TabularFeatureEncoder:
    """A randomly initialised encoder for the shard set's tabular schema (params: tabular_model)."""
    return TabularFeatureEncoder(config=ft_config(cfg.model, TabularEncoder(meta["tabular"])))


def rebuild(config: dict, folder: Path | None) -> TabularFeatureEncoder:
    return TabularFeatureEncoder(config=FTConfig(**config))


def load_mfm_encoder(folder: Path, config: FTConfig) -> TabularFeatureEncoder:
    """The MFM-pretrained encoder; its saved architecture must match the current one."""
    if not (folder / "encoder.safetensors").is_file():
        raise PipelineError(f"{folder}/encoder.safetensors not found; run the tabular_pretrain stage first")
    saved = read_json(folder / "config.json")["encoder"]
    if saved != dataclasses.asdict(config):
        raise PipelineError(f"{folder} was pretrained with a different architecture or schema; rerun tabular_pretrain")
    encoder = TabularFeatureEncoder(config=config)
    encoder.load_state_dict(load_file(str(folder / "encoder.safetensors")))
    return encoder


def fit_one(cfg: TabularExpertConfig, t, encoder: TabularFeatureEncoder, splits: dict, ctx: ExpertContext, live):
    """Train an expert on splits['train'] (early stopping on splits['val']; class weights from the rows it trains
    on); returns (expert, id-sorted features and logits of every split given, the fit)."""
    seed_everything(t.seed)
    expert = Expert(modality="tabular", encoder=encoder, n_classes=len(ctx.meta["classes"]),
                    head_hidden=cfg.head_hidden, dropout=cfg.dropout)
    data, result = fit_on_tensors(expert, t, splits, ctx.meta, ctx.device, live, "tabular",
                                  param_groups=parameter_groups(expert, t.weight_decay))
    return expert, data, result


def train(cfg: TabularExpertConfig, ctx: ExpertContext) -> TrainedExpert:
    """Train the reported expert (pretrained or not, per params) and the other variant as an ablation, each once
    per seed."""
    if cfg.pretrained and ctx.mfm_dir is None:
        raise PipelineError("tabular_expert.pretrained is on but no --mfm folder was given")
    tabular = TabularEncoder(ctx.meta["tabular"])
    config = ft_config(cfg.model, tabular)
    splits = {s: load_tabular_split(ctx.reader, s, tabular) for s in ctx.splits}

    def variant(pretrained: bool, live) -> Callable[[int], Run]:
        def run_one(seed: int) -> Run:
            torch.manual_seed(seed)
            encoder = load_mfm_encoder(ctx.mfm_dir, config) if pretrained else TabularFeatureEncoder(config=config)
            return fit_one(cfg, cfg.train.for_seed(seed), encoder, splits, ctx,
                            live if seed == cfg.train.seeds[0] else None)
        return run_one

    trained = over_seeds(cfg.train.seeds, variant(cfg.pretrained, ctx.live))
    trained.extra = {"pretrained": cfg.pretrained, "ablation": {}}
    if ctx.mfm_dir is not None:  # the other variant, for comparison
        other = over_seeds(cfg.train.seeds, variant(not cfg.pretrained, None))
        scores = summarize(other.runs, truth_of(other.data), ctx.meta["positive_index"], cfg.train.seeds)
        trained.extra["ablation"]["with_mfm" if not cfg.pretrained else "without_mfm"] = {
            s: scores[s] for s in scores if s not in ("per_seed", "seeds")}
    return trained
