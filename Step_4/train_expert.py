"""Stage `<modality>_expert`: train and evaluate one expert, and cache its embeddings.

text / vision, mode 'frozen' (default): the pretrained encoder runs once over every split,
its features are cached, and only the MLP head is trained on them. Mode 'finetune': the top
layers train end to end from the shards (light augmentation for vision), then features are cached.
tabular: an FT-Transformer trained end to end, initialised from MFM pretraining when
tabular_expert.pretrained is on; a run without pretraining is reported beside it.

Writes models/<modality>_expert/, data/embeddings/<modality>/{train,val,test}.safetensors,
metrics/<modality>_expert.json, metrics/plots/<modality>_expert/ and dvclive/<modality>_expert/.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from core.errors import PipelineError, run_cli
from core.files import atomic_dir, clean_stale_temps
from core.params import section
from core.seed import pick_device, seed_everything
from Step_3.reader import make_loader, read_meta
from Step_3.splits import SPLITS
from Step_3.tabular import TabularEncoder
from Step_4.config import TabularExpertConfig, TabularModelConfig, TextExpertConfig, VisionExpertConfig
from Step_4.embeddings import extract, save_embeddings, tensor_batches
from Step_4.expert import Expert, save_expert
from Step_4.inputs import make_inputs
from Step_4.report import labelled_probs, write_report
from Step_4.training import FitResult, fit

CONFIGS = {"text": TextExpertConfig, "vision": VisionExpertConfig, "tabular": TabularExpertConfig}


def open_live(name: str):
    from dvclive import Live

    return Live(dir=f"dvclive/{name}", save_dvc_exp=False, dvcyaml=None, report=None)


def shard_loader(shard_dir, split, expert, tabular, *, train, batch_size, seed, epoch, num_workers):
    transform, collate = make_inputs(expert.modality, expert.encoder, train=train, tabular=tabular)
    return make_loader(shard_dir, split, transform=transform, collate=collate, batch_size=batch_size, shuffle=train,
                       seed=seed, epoch=epoch, num_workers=num_workers, decode_images=expert.modality == "vision")


def labelled(data: dict, keys=("features",)) -> dict:
    keep = data["labels"] >= 0
    return {"label": data["labels"][keep], **{k: data[k][keep] for k in keys}}


def train_frozen(expert: Expert, cfg, shard_dir: Path, meta: dict, tabular: TabularEncoder, device: str, live):
    """Cache encoder features once, then fit the head on them."""
    expert.encoder.freeze(0)
    data = {}
    for split in SPLITS:
        loader = shard_loader(shard_dir, split, expert, tabular, train=False, batch_size=cfg.embed_batch_size,
                              seed=0, epoch=0, num_workers=cfg.num_workers)
        data[split] = extract(expert, loader, device, total=math.ceil(meta["sizes"][split] / cfg.embed_batch_size),
                              desc=f"{expert.modality} features {split}")
    embed_rate = data["train"]["samples_per_s"]
    train_set, val_set = labelled(data["train"]), labelled(data["val"])
    t = cfg.train
    result = fit(expert, train_batches=lambda e: tensor_batches(train_set, t.batch_size, shuffle=True, seed=t.seed, epoch=e),
                 val_batches=lambda: tensor_batches(val_set, 512, shuffle=False),
                 steps_per_epoch=math.ceil(len(train_set["label"]) / t.batch_size), cfg=t,
                 class_counts=class_counts(meta), device=device, positive=meta["positive_index"], live=live,
                 desc=f"{expert.modality} head")
    with torch.no_grad():
        expert.eval()
        for split in SPLITS:
            data[split]["logits"] = expert.forward_head(data[split]["features"].to(device)).float().cpu()
    return data, result, embed_rate


def train_finetune(expert: Expert, cfg, shard_dir: Path, meta: dict, tabular: TabularEncoder, device: str, live):
    """Fit encoder top layers + head from the shards, then cache features with the tuned encoder."""
    expert.encoder.freeze(cfg.trainable_layers if expert.modality == "text" else cfg.trainable_blocks)
    t = cfg.train
    result = fit(expert,
                 train_batches=lambda e: _labelled_batches(shard_loader(shard_dir, "train", expert, tabular, train=True,
                                                                        batch_size=t.batch_size, seed=t.seed, epoch=e,
                                                                        num_workers=cfg.num_workers)),
                 val_batches=lambda: _labelled_batches(shard_loader(shard_dir, "val", expert, tabular, train=False,
                                                                    batch_size=cfg.embed_batch_size, seed=0, epoch=0,
                                                                    num_workers=cfg.num_workers)),
                 steps_per_epoch=math.ceil(sum(class_counts(meta)) / t.batch_size), cfg=t,
                 class_counts=class_counts(meta), device=device, positive=meta["positive_index"], live=live,
                 desc=f"{expert.modality} finetune")
    data = {}
    for split in SPLITS:
        loader = shard_loader(shard_dir, split, expert, tabular, train=False, batch_size=cfg.embed_batch_size,
                              seed=0, epoch=0, num_workers=cfg.num_workers)
        data[split] = extract(expert, loader, device, desc=f"{expert.modality} features {split}")
    return data, result, data["train"]["samples_per_s"]


def _labelled_batches(loader):
    for batch in loader:
        keep = batch["label"] >= 0
        if keep.all():
            yield batch
        elif keep.any():
            yield {k: (v[keep] if torch.is_tensor(v) else [x for x, m in zip(v, keep.tolist()) if m]) for k, v in batch.items()}


def class_counts(meta: dict) -> list[int]:
    return [meta["counts"]["train"].get(c, 0) for c in meta["classes"]]


def build_expert(modality: str, cfg, meta: dict, mfm_dir: Path | None) -> Expert:
    n_classes = len(meta["classes"])
    if modality == "text":
        from Step_4.text_encoder import TextEncoder

        encoder = TextEncoder(model=cfg.model, pooling=cfg.pooling, max_length=cfg.max_length)
    elif modality == "vision":
        from Step_4.vision_encoder import VisionEncoder

        encoder = VisionEncoder(model=cfg.model, weights=cfg.weights)
    else:
        raise ValueError(modality)
    return Expert(modality=modality, encoder=encoder, n_classes=n_classes, head_hidden=cfg.head_hidden, dropout=cfg.dropout)


def train_expert(modality: str, args) -> None:
    cfg = section(CONFIGS[modality], f"{modality}_expert", args.params)
    shard_dir = Path(args.shards)
    if not (shard_dir / "meta.json").is_file():
        raise PipelineError(f"{shard_dir}/meta.json not found; run the shard stage first (dvc repro shard)")
    meta = read_meta(shard_dir)
    tabular = TabularEncoder(meta["tabular"])
    device = pick_device(cfg.device)
    name = f"{modality}_expert"
    live = open_live(name)
    if modality == "tabular":
        from Step_4.tabular_expert import train_tabular

        model_cfg = section(TabularModelConfig, "tabular_model", args.params)
        data, result, embed_rate, expert, extra = train_tabular(cfg, model_cfg, shard_dir, meta, tabular, device, live,
                                                                Path(args.mfm) if args.mfm else None)
    else:
        seed_everything(cfg.train.seed)
        expert = build_expert(modality, cfg, meta, None)
        runner = train_frozen if cfg.mode == "frozen" else train_finetune
        data, result, embed_rate = runner(expert, cfg, shard_dir, meta, tabular, device, live)
        extra = {}
    live.end()
    finish(name, modality, expert, data, result, embed_rate, meta, args, extra)


def finish(name: str, modality: str, expert: Expert, data: dict, result: FitResult, embed_rate: float, meta: dict,
           args, extra: dict) -> None:
    """Save embeddings, the model folder, metrics and plots."""
    emb_dir = Path(args.embeddings)
    clean_stale_temps(emb_dir.parent, emb_dir.name)
    with atomic_dir(emb_dir) as tmp:
        for split in SPLITS:
            save_embeddings(tmp / f"{split}.safetensors", data[split], modality)
    summary = {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
               "best_val_score": round(result.best_score, 4)}
    model_dir = Path(args.model)
    clean_stale_temps(model_dir.parent, model_dir.name)
    with atomic_dir(model_dir) as tmp:
        save_expert(expert.cpu(), tmp, classes=meta["classes"],
                    extra={"training": summary, "tabular_schema": meta["tabular"], "text_source": meta["text_source"]})
    report = write_report(name, {s: labelled_probs(data[s]) for s in ("val", "test")}, classes=meta["classes"],
                          positive=meta["positive_index"], metrics_dir=Path(args.metrics_dir),
                          extra={"throughput": {"train_samples_per_s": result.samples_per_s,
                                                "embed_samples_per_s": embed_rate},
                                 "training": summary, **extra})
    print(f"{name}: val macro_f1 {report['val']['macro_f1']} auroc {report['val']['auroc']} | "
          f"test macro_f1 {report['test']['macro_f1']} auroc {report['test']['auroc']}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_4.train_expert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modality", choices=sorted(CONFIGS), help="which expert to train")
    parser.add_argument("--params", default="params.yaml", help="params file (section <modality>_expert)")
    parser.add_argument("--shards", default="data/shards", help="shard folder from Step_3")
    parser.add_argument("--mfm", default=None, help="tabular only: MFM-pretrained encoder folder")
    parser.add_argument("--model", required=True, help="output model folder, e.g. models/text_expert")
    parser.add_argument("--embeddings", required=True, help="output embedding folder, e.g. data/embeddings/text")
    parser.add_argument("--metrics-dir", default="metrics", help="folder for <name>.json and plots/<name>/")
    args = parser.parse_args()
    train_expert(args.modality, args)


if __name__ == "__main__":
    run_cli(main)
