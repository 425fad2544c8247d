"""Tabular expert training: FT-Transformer end to end, with and without MFM initialisation."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
from safetensors.torch import load_file

from core.errors import PipelineError
from core.files import read_json
from core.seed import seed_everything
from Step_3.splits import SPLITS
from Step_4.config import TabularExpertConfig, TabularModelConfig
from Step_4.embeddings import extract, tensor_batches
from Step_4.expert import Expert
from Step_4.report import evaluate, labelled_probs
from Step_4.tabular_data import TENSOR_KEYS, batches_with_ids, load_tabular_split
from Step_4.tabular_model import FTConfig, FTTransformerEncoder, parameter_groups
from Step_4.training import fit


def ft_config(model_cfg: TabularModelConfig, tabular) -> FTConfig:
    return FTConfig(n_numeric=tabular.n_numeric, cardinalities=tabular.cardinalities,
                    **dataclasses.asdict(model_cfg))


def load_mfm_encoder(folder: Path, config: FTConfig) -> FTTransformerEncoder:
    """The MFM-pretrained encoder; its saved architecture must match the current one."""
    if not (folder / "encoder.safetensors").is_file():
        raise PipelineError(f"{folder}/encoder.safetensors not found; run the tabular_pretrain stage first")
    saved = read_json(folder / "config.json")["encoder"]
    if saved != dataclasses.asdict(config):
        raise PipelineError(f"{folder} was pretrained with a different architecture or schema; rerun tabular_pretrain")
    encoder = FTTransformerEncoder(config=config)
    encoder.load_state_dict(load_file(str(folder / "encoder.safetensors")))
    return encoder


def _fit_one(cfg: TabularExpertConfig, encoder: FTTransformerEncoder, splits: dict, meta: dict, device: str, live):
    seed_everything(cfg.train.seed)
    expert = Expert(modality="tabular", encoder=encoder, n_classes=len(meta["classes"]),
                    head_hidden=cfg.head_hidden, dropout=cfg.dropout)
    keep = splits["train"]["label"] >= 0
    train = {k: splits["train"][k][keep] for k in TENSOR_KEYS}
    vkeep = splits["val"]["label"] >= 0
    val = {k: splits["val"][k][vkeep] for k in TENSOR_KEYS}
    t = cfg.train
    counts = [meta["counts"]["train"].get(c, 0) for c in meta["classes"]]
    result = fit(expert, train_batches=lambda e: tensor_batches(train, t.batch_size, shuffle=True, seed=t.seed, epoch=e),
                 val_batches=lambda: tensor_batches(val, 1024, shuffle=False),
                 steps_per_epoch=math.ceil(len(train["label"]) / t.batch_size), cfg=t, class_counts=counts,
                 device=device, positive=meta["positive_index"], param_groups=parameter_groups(expert, t.weight_decay),
                 live=live, desc="tabular")
    data = {s: extract(expert, batches_with_ids(splits[s], 1024), device, desc=f"tabular features {s}") for s in SPLITS}
    return expert, data, result


def train_tabular(cfg: TabularExpertConfig, model_cfg: TabularModelConfig, shard_dir: Path, meta: dict, tabular,
                  device: str, live, mfm_dir: Path | None):
    """Train the reported expert (pretrained or not, per params) and the other variant as an ablation."""
    config = ft_config(model_cfg, tabular)
    splits = {s: load_tabular_split(shard_dir, s, tabular) for s in SPLITS}
    variants = {}
    for pretrained in (cfg.pretrained, not cfg.pretrained):
        if pretrained and mfm_dir is None:
            if pretrained == cfg.pretrained:
                raise PipelineError("tabular_expert.pretrained is on but no --mfm folder was given")
            continue
        torch.manual_seed(cfg.train.seed)
        encoder = load_mfm_encoder(mfm_dir, config) if pretrained else FTTransformerEncoder(config=config)
        variants[pretrained] = _fit_one(cfg, encoder, splits, meta, device, live if pretrained == cfg.pretrained else None)
    expert, data, result = variants[cfg.pretrained]
    ablation = {}
    if (not cfg.pretrained) in variants:
        _, other, other_result = variants[not cfg.pretrained]
        ablation = {"with_mfm" if not cfg.pretrained else "without_mfm":
                    {**evaluate({s: labelled_probs(other[s]) for s in ("val", "test")}, meta["positive_index"]),
                     "best_epoch": other_result.best_epoch}}
    extra = {"pretrained": cfg.pretrained, "ablation": ablation}
    return data, result, data["train"]["samples_per_s"], expert, extra
