"""Stage `tabular_pretrain`: masked-feature-modelling pretraining of the FT-Transformer encoder.

A fraction of feature tokens (tabular_pretrain.mask_fraction) is replaced by a learned mask
token; numeric features are reconstructed by MSE, categorical ones by cross-entropy. Uses the
train split's rows, labelled or not (labels are never read). Keeps the epoch with the lowest
validation loss. Writes models/tabular_mfm/{encoder.safetensors,config.json} and metrics/tabular_mfm.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from core import distributed
from core.cli import run_cli
from core.errors import PipelineError
from core.files import atomic_dir, clean_stale_temps, write_json
from core.params import section
from core.seed import pick_device, seed_everything
from Step_3.reader import ShardReader
from Step_3.tabular import TabularSchema
from Step_4.engine import Objective, fit, to_device
from Step_4.features.tensors import resident, tensor_batches
from Step_4.tabular.config import TabularModelConfig, TabularPretrainConfig
from Step_4.tabular.data import load_tabular_split
from Step_4.tabular.encoder import ft_config
from Step_4.tabular.model import FTTransformerEncoder, MaskedFeatureModel, parameter_groups

KEYS = ("x_num", "missing", "x_cat")


@torch.no_grad()
def evaluate_mfm(model: MaskedFeatureModel, data: dict, device: str, seed: int) -> dict:
    """Mean MFM losses over a split with a fixed mask (same seed every epoch)."""
    model.eval()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    totals, n = {"loss": 0.0, "num_loss": 0.0, "cat_loss": 0.0, "cat_accuracy": 0.0}, 0
    for batch in tensor_batches(data, 1024, shuffle=False):
        out = model(*(to_device(batch, device)[k] for k in KEYS), generator=gen)
        size = len(batch["x_num"])
        for key in totals:
            totals[key] += float(out[key]) * size
        n += size
    return {k: round(v / max(1, n), 5) for k, v in totals.items()}


def pretrain(cfg: TabularPretrainConfig, model_cfg: TabularModelConfig, reader: ShardReader, device: str):
    """Pretrain on the train split's rows; keeps the encoder of the epoch with the lowest validation loss."""
    tabular = TabularSchema(reader.meta["tabular"])
    config = ft_config(model_cfg, tabular)
    train, val = (resident({k: v for k, v in load_tabular_split(reader, s, tabular).items() if k in KEYS}, device)
                  for s in ("train", "val"))
    if not len(train["x_num"]) and not len(train["x_cat"]):
        raise PipelineError("the train split has no tabular rows to pretrain on")
    seed_everything(cfg.seed)
    model = MaskedFeatureModel(encoder=FTTransformerEncoder(config=config), mask_fraction=cfg.mask_fraction).to(device)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    objective = Objective(loss=lambda m, batch: m(*(batch[k] for k in KEYS), generator=gen)["loss"],
                          evaluate=lambda m: evaluate_mfm(m, val, device, cfg.seed), score="loss",
                          higher_is_better=False)
    first_val = evaluate_mfm(model, val, device, cfg.seed)
    t = cfg.train_config()
    result = fit(model, objective, cfg=t, device=device, desc="mfm pretrain",
                 train_batches=lambda e: tensor_batches(train, t.batch_size, shuffle=True, seed=t.seed, epoch=e),
                 steps_per_epoch=math.ceil(len(train["x_num"]) / t.batch_size),
                 param_groups=parameter_groups(model, t.weight_decay))
    best = result.history[result.best_epoch - 1]
    val_best = {"epoch": best["epoch"], **{k: best[f"val_{k}"] for k in first_val}}
    return model.encoder, config, {"val_initial": first_val, "val_best": val_best, "epochs": cfg.epochs,
                                   "rows": len(train["x_num"])}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_4.tabular.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (sections tabular_pretrain, tabular_model)")
    parser.add_argument("--shards", default="data/shards", help="shard folder or URL prefix from Step_3")
    parser.add_argument("--out", default="models/tabular_mfm")
    parser.add_argument("--metrics", default="metrics/tabular_mfm.json", help="output: validation losses")
    parser.add_argument("--report", default="reports/tabular_mfm.json", help="output: best epoch, epochs, rows")
    args = parser.parse_args()
    cfg = section(TabularPretrainConfig, "tabular_pretrain", args.params)
    model_cfg = section(TabularModelConfig, "tabular_model", args.params)
    device = distributed.init(pick_device(cfg.device))  # several processes under torchrun
    encoder, config, report = pretrain(cfg, model_cfg, ShardReader(args.shards), device)
    distributed.on_main(lambda: write_outputs(encoder, config, report, cfg, args))  # rank 0 writes
    distributed.finish()


def write_outputs(encoder, config, report: dict, cfg: TabularPretrainConfig, args) -> None:
    out = Path(args.out)
    clean_stale_temps(out.parent, out.name)
    with atomic_dir(out) as tmp:
        save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(tmp / "encoder.safetensors"))
        write_json(tmp / "config.json", {"encoder": dataclasses.asdict(config), "mask_fraction": cfg.mask_fraction})
    write_json(args.metrics, {"val_initial": report["val_initial"],
                              "val_best": {k: v for k, v in report["val_best"].items() if k != "epoch"}})
    write_json(args.report, {"best_epoch": report["val_best"]["epoch"], "epochs": report["epochs"],
                             "rows": report["rows"]})
    print(f"tabular_pretrain: val MFM loss {report['val_initial']['loss']} -> {report['val_best']['loss']}")


if __name__ == "__main__":
    run_cli(main)
