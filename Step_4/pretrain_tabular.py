"""Stage `tabular_pretrain`: masked-feature-modelling pretraining of the FT-Transformer encoder.

A fraction of feature tokens (tabular_pretrain.mask_fraction) is replaced by a learned mask
token; numeric features are reconstructed by MSE, categorical ones by cross-entropy. Uses the
train split's rows, labelled or not (labels are never read). Keeps the epoch with the lowest
validation loss. Writes models/tabular_mfm/{encoder.safetensors,config.json} and metrics/tabular_mfm.json.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import math
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from core.errors import PipelineError, run_cli
from core.files import atomic_dir, clean_stale_temps, write_json
from core.params import section
from core.seed import pick_device, seed_everything
from Step_3.reader import read_meta
from Step_3.tabular import TabularEncoder
from Step_4.config import TabularModelConfig, TabularPretrainConfig
from Step_4.embeddings import tensor_batches
from Step_4.tabular_data import load_tabular_split
from Step_4.tabular_expert import ft_config
from Step_4.tabular_model import FTTransformerEncoder, MaskedFeatureModel, parameter_groups
from Step_4.training import to_device, warmup_cosine

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


def pretrain(cfg: TabularPretrainConfig, model_cfg: TabularModelConfig, shard_dir: Path, device: str):
    meta = read_meta(shard_dir)
    tabular = TabularEncoder(meta["tabular"])
    config = ft_config(model_cfg, tabular)
    train = {k: v for k, v in load_tabular_split(shard_dir, "train", tabular).items() if k in KEYS}
    val = {k: v for k, v in load_tabular_split(shard_dir, "val", tabular).items() if k in KEYS}
    if not len(train["x_num"]) and not len(train["x_cat"]):
        raise PipelineError("the train split has no tabular rows to pretrain on")
    seed_everything(cfg.seed)
    model = MaskedFeatureModel(encoder=FTTransformerEncoder(config=config), mask_fraction=cfg.mask_fraction).to(device)
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps = math.ceil(len(train["x_num"]) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.epochs * steps, 0.05))
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    best, best_loss, history = None, math.inf, []
    first_val = evaluate_mfm(model, val, device, cfg.seed)
    for epoch in tqdm(range(cfg.epochs), desc="mfm pretrain", unit="epoch"):
        model.train()
        for batch in tensor_batches(train, cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch):
            out = model(*(to_device(batch, device)[k] for k in KEYS), generator=gen)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
        val_scores = evaluate_mfm(model, val, device, cfg.seed)
        history.append({"epoch": epoch + 1, **val_scores})
        if val_scores["loss"] < best_loss:
            best_loss = val_scores["loss"]
            best = copy.deepcopy({k: v.detach().cpu() for k, v in model.encoder.state_dict().items()})
    model.encoder.load_state_dict(best)
    return model.encoder, config, {"val_initial": first_val, "val_best": min(history, key=lambda h: h["loss"]),
                                   "epochs": cfg.epochs, "rows": len(train["x_num"])}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_4.pretrain_tabular", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (sections tabular_pretrain, tabular_model)")
    parser.add_argument("--shards", default="data/shards")
    parser.add_argument("--out", default="models/tabular_mfm")
    parser.add_argument("--metrics", default="metrics/tabular_mfm.json")
    args = parser.parse_args()
    cfg = section(TabularPretrainConfig, "tabular_pretrain", args.params)
    model_cfg = section(TabularModelConfig, "tabular_model", args.params)
    if not (Path(args.shards) / "meta.json").is_file():
        raise PipelineError(f"{args.shards}/meta.json not found; run the shard stage first")
    encoder, config, report = pretrain(cfg, model_cfg, Path(args.shards), pick_device(cfg.device))
    out = Path(args.out)
    clean_stale_temps(out.parent, out.name)
    with atomic_dir(out) as tmp:
        save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(tmp / "encoder.safetensors"))
        write_json(tmp / "config.json", {"encoder": dataclasses.asdict(config), "mask_fraction": cfg.mask_fraction})
    write_json(args.metrics, report)
    print(f"tabular_pretrain: val MFM loss {report['val_initial']['loss']} -> {report['val_best']['loss']}")


if __name__ == "__main__":
    run_cli(main)
