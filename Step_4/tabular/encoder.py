"""The tabular expert's encoder: the FT-Transformer (Step_4.tabular.model) with the expert interface, and the
MFM-pretrained encoder it starts from."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from core.errors import PipelineError
from core.files import read_json
from Step_3.tabular import TabularSchema
from Step_4.tabular.config import TabularModelConfig
from Step_4.tabular.model import FTConfig, FTTransformerEncoder


class TabularFeatureEncoder(FTTransformerEncoder):
    """FTTransformerEncoder with the expert interface: inputs from shard samples, features from a batch."""

    def inputs(self, *, train: bool, meta: dict) -> tuple[Callable, Callable]:
        tabular = TabularSchema(meta["tabular"])

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


def ft_config(model_cfg: TabularModelConfig, tabular: TabularSchema) -> FTConfig:
    return FTConfig(n_numeric=tabular.n_numeric, cardinalities=tabular.cardinalities,
                    **dataclasses.asdict(model_cfg))


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
