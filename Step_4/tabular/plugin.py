"""The tabular expert plugin (registry kind 'tabular'): an FT-Transformer over the metadata fields, trained end
to end on all rows as tensors, initialised from MFM pretraining when tabular_expert.pretrained is on (the other
variant is reported beside it)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from core.errors import PipelineError
from core.seed import seed_everything
from Step_3.tabular import TabularSchema
from Step_4.context import ExpertContext, FoldTrainer
from Step_4.expert import Expert, make_expert
from Step_4.recipes import Run, TrainedExpert, fit_on_tensors, over_seeds
from Step_4.scores import summarize, truth_of
from Step_4.tabular.config import TabularExpertConfig
from Step_4.tabular.data import load_tabular_split
from Step_4.tabular.encoder import TabularFeatureEncoder, ft_config, load_mfm_encoder
from Step_4.tabular.model import FTConfig, parameter_groups


def build(cfg: TabularExpertConfig, meta: dict) -> TabularFeatureEncoder:
    """A randomly initialised encoder for the shard set's tabular schema (params: tabular_model)."""
    return TabularFeatureEncoder(config=ft_config(cfg.model, TabularSchema(meta["tabular"])))


def rebuild(config: dict, folder: Path | None) -> TabularFeatureEncoder:
    return TabularFeatureEncoder(config=FTConfig(**config))


def fit_one(cfg: TabularExpertConfig, t, encoder: TabularFeatureEncoder, splits: dict, ctx: ExpertContext, live):
    """Train an expert on splits['train'] (early stopping on splits['val'] and ['val_unseen']; class weights from the rows it trains
    on); returns (expert, id-sorted features and logits of every split given, the fit)."""
    seed_everything(t.seed)
    expert = make_expert("tabular", encoder, cfg, ctx.meta)
    data, result = fit_on_tensors(expert, t, splits, ctx.meta, ctx.device, live, "tabular",
                                  param_groups=parameter_groups(expert, t.weight_decay))
    return expert, data, result


def train(cfg: TabularExpertConfig, ctx: ExpertContext) -> TrainedExpert:
    """Train the reported expert (pretrained or not, per params) and the other variant as an ablation, each once
    per seed."""
    if cfg.pretrained and ctx.mfm_dir is None:
        raise PipelineError("tabular_expert.pretrained is on but no --mfm folder was given")
    tabular = TabularSchema(ctx.meta["tabular"])
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


def fold_trainer(cfg: TabularExpertConfig, ctx: ExpertContext) -> FoldTrainer:
    """How cross-validation retrains the tabular expert inside a fold: on the fold's rows only, from the
    MFM-pretrained encoder (ctx.mfm_dir) when tabular_expert.pretrained."""
    if cfg.pretrained and ctx.mfm_dir is None:
        raise PipelineError("tabular_expert.pretrained is on: give the MFM encoder with --mfm (models/tabular_mfm)")
    schema = TabularSchema(ctx.meta["tabular"])
    config = ft_config(cfg.model, schema)

    def fit(splits: dict, seed: int) -> Expert:
        encoder = load_mfm_encoder(ctx.mfm_dir, config) if cfg.pretrained else TabularFeatureEncoder(config=config)
        return fit_one(cfg, cfg.train.for_seed(seed), encoder, splits, ctx, None)[0]

    return FoldTrainer(load=lambda split: load_tabular_split(ctx.reader, split, schema), fit=fit)


def features_learn_labels(cfg: TabularExpertConfig) -> bool:
    return True
