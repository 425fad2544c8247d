"""Stage `fusion@<method>`: train one fusion head on the experts' cached embeddings and evaluate it.

Methods: concat, gated (mixture of experts with a router), transformer (one token per modality),
late (average of expert probabilities, nothing to train). Modality dropout in training makes the
heads robust to a missing modality; every method is also evaluated with each modality removed.
Writes models/mm_fusion/<method>/ (model.safetensors + fusion.json), metrics/fusion_<method>.json
and metrics/plots/fusion_<method>/ (ROC, PR, confusion; gate weights per class for gated).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from core.errors import run_cli
from core.files import atomic_dir, clean_stale_temps, read_json, write_json
from core.params import load_params, section
from core.seed import pick_device, seed_everything
from Step_3.splits import SPLITS
from Step_4.embeddings import tensor_batches
from Step_4.metrics import classification_metrics
from Step_4.report import write_report
from Step_4.training import fit, predict
from Step_5.config import FusionConfig
from Step_5.data import drop_modalities, load_fusion_split, tensors_of
from Step_5.models import METHODS, FusionDims


def build_fusion(method: str, dims: FusionDims, method_params: dict) -> torch.nn.Module:
    return METHODS[method](dims=dims, **method_params)


def train_batches(train: dict, cfg: FusionConfig, epoch: int):
    gen = torch.Generator().manual_seed(cfg.train.seed * 7919 + epoch)
    for batch in tensor_batches(train, cfg.train.batch_size, shuffle=True, seed=cfg.train.seed, epoch=epoch):
        batch["mask"] = drop_modalities(batch["mask"], cfg.modality_dropout, gen)
        yield batch


def probs_of(model, data: dict, device: str, drop: str | None = None, modalities: list[str] = ()) -> tuple:
    """(labels, probabilities) on labelled rows, optionally with one modality removed."""
    tensors = tensors_of(data)
    if drop is not None:
        tensors["mask"] = tensors["mask"].clone()
        tensors["mask"][:, modalities.index(drop)] = False
    labels, probs, _ = predict(model, tensor_batches(tensors, 1024, shuffle=False), device)
    return labels, probs


@torch.no_grad()
def gate_statistics(model, data: dict, device: str, classes: list[str], modalities: list[str]) -> dict:
    """Mean gate weight per modality, per true class and overall."""
    model.eval()
    tensors = {k: v.to(device) for k, v in tensors_of(data).items()}
    weights, _ = model.gates(tensors)
    weights = weights.cpu().numpy()
    labels = tensors["label"].cpu().numpy()
    stats = {"all": {m: round(float(weights[:, i].mean()), 4) for i, m in enumerate(modalities)}}
    for c, name in enumerate(classes):
        rows = weights[labels == c]
        if len(rows):
            stats[name] = {m: round(float(rows[:, i].mean()), 4) for i, m in enumerate(modalities)}
    return stats


def run(method: str, args) -> None:
    cfg = section(FusionConfig, "fusion", args.params)
    method_params = dataclasses.asdict(getattr(cfg, method))
    meta = read_json(Path(args.shards) / "meta.json")
    classes, positive = meta["classes"], meta["positive_index"]
    root = Path(args.embeddings)
    data = {s: load_fusion_split(root, s, cfg.modalities) for s in SPLITS}
    dims = FusionDims(inputs={m: data["train"][m].shape[1] for m in cfg.modalities}, n_classes=len(classes))
    device = pick_device("auto")
    seed_everything(cfg.train.seed)
    model = build_fusion(method, dims, method_params)
    summary = {"best_epoch": 0, "epochs_run": 0}
    throughput = {}
    from dvclive import Live

    live = Live(dir=f"dvclive/fusion_{method}", save_dvc_exp=False, dvcyaml=None, report=None)
    if any(p.requires_grad for p in model.parameters()):
        train, val = tensors_of(data["train"]), tensors_of(data["val"])
        counts = [meta["counts"]["train"].get(c, 0) for c in classes]
        result = fit(model, train_batches=lambda e: train_batches(train, cfg, e),
                     val_batches=lambda: tensor_batches(val, 1024, shuffle=False),
                     steps_per_epoch=math.ceil(len(train["label"]) / cfg.train.batch_size), cfg=cfg.train,
                     class_counts=counts, device=device, positive=positive, live=live, desc=f"fusion {method}")
        summary = {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                   "best_val_score": round(result.best_score, 4)}
        throughput = {"train_samples_per_s": result.samples_per_s}
    model.eval()
    splits = {s: probs_of(model, data[s], device) for s in ("val", "test")}
    removal_probs = {m: probs_of(model, data["test"], device, drop=m, modalities=cfg.modalities) for m in cfg.modalities}
    tuned_experts = None
    if cfg.finetune.enabled and summary["epochs_run"]:
        from Step_4.expert import load_expert
        from Step_5.finetune import EndToEndFusion, finetune

        experts = {m: load_expert(Path(args.experts) / f"{m}_expert", device)[0] for m in cfg.modalities}
        e2e = EndToEndFusion(experts=experts, head=model, modalities=cfg.modalities)
        result, splits, removal_probs = finetune(e2e, cfg.finetune, cfg.train, shard_dir=Path(args.shards), meta=meta,
                                                 modality_dropout=cfg.modality_dropout, device=device, live=live)
        summary["finetune"] = {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                               "best_val_score": round(result.best_score, 4)}
        throughput["finetune_samples_per_s"] = result.samples_per_s
        tuned_experts = experts
    if not summary["epochs_run"]:  # nothing trained (late fusion): log the validation scores once
        for key, value in classification_metrics(*splits["val"], positive).items():
            if key != "n":
                live.log_metric(f"val/{key}", value)
        live.next_step()
    live.end()
    removal = {f"without_{m}": classification_metrics(*removal_probs[m], positive) for m in cfg.modalities}
    extra = {"method": method, "params": method_params, "training": summary, "throughput": throughput,
             "modality_removal_test": removal}
    plots_dir = Path(args.metrics_dir) / "plots" / f"fusion_{method}"
    if method == "gated" and tuned_experts is None:
        extra["gates"] = {s: gate_statistics(model, data[s], device, classes, cfg.modalities) for s in ("val", "test")}
        write_json(plots_dir / "gates.json",
                   [{"class_modality": f"{c} · {m}", "mean_gate": w}
                    for c, per in extra["gates"]["test"].items() if c != "all" for m, w in per.items()])
    report = write_report(f"fusion_{method}", splits, classes=classes, positive=positive,
                          metrics_dir=Path(args.metrics_dir), extra=extra)
    save_fusion(model.cpu(), Path(args.model), method=method, method_params=method_params, dims=dims, classes=classes,
                positive=positive, modalities=cfg.modalities, args=args, tuned_experts=tuned_experts, meta=meta)
    print(f"fusion_{method}: val macro_f1 {report['val']['macro_f1']} auroc {report['val']['auroc']} | "
          f"test macro_f1 {report['test']['macro_f1']} auroc {report['test']['auroc']}")


def save_fusion(model, folder: Path, *, method, method_params, dims, classes, positive, modalities, args,
                tuned_experts=None, meta=None) -> None:
    """model.safetensors + fusion.json: method, sizes, classes, the experts used and the OCR settings.
    Experts fine-tuned end to end are saved inside the folder (experts/<modality>_expert/)."""
    params = load_params(args.params)
    experts = {m: f"{args.experts}/{m}_expert" for m in modalities}
    clean_stale_temps(folder.parent, folder.name)
    with atomic_dir(folder) as tmp:
        if tuned_experts:
            from Step_4.expert import save_expert

            for m, expert in tuned_experts.items():
                save_expert(expert.cpu(), tmp / "experts" / f"{m}_expert", classes=classes,
                            extra={"tabular_schema": meta["tabular"], "text_source": meta["text_source"]})
                experts[m] = f"{folder}/experts/{m}_expert"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()} or {"_empty": torch.zeros(0)},
                  str(tmp / "model.safetensors"))
        write_json(tmp / "fusion.json", {
            "method": method, "params": method_params, "inputs": dims.inputs, "classes": classes,
            "positive_index": positive, "modalities": modalities,
            "experts": experts,
            "ocr_settings": params.get("ocr", {}).get("settings", {})})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.train_fusion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=sorted(METHODS), help="fusion method")
    parser.add_argument("--params", default="params.yaml", help="params file (section fusion)")
    parser.add_argument("--shards", default="data/shards", help="shard folder (for meta.json)")
    parser.add_argument("--embeddings", default="data/embeddings", help="expert embedding cache root")
    parser.add_argument("--experts", default="models", help="folder holding <modality>_expert/ (recorded for predict)")
    parser.add_argument("--model", required=True, help="output folder, e.g. models/mm_fusion/gated")
    parser.add_argument("--metrics-dir", default="metrics")
    args = parser.parse_args()
    run(args.method, args)


if __name__ == "__main__":
    run_cli(main)
