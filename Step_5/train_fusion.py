"""Stage `fusion@<method>`: train one fusion head on the experts' cached embeddings and evaluate it.

Methods (Step_5.models registry): concat, gated (mixture of experts with a router), transformer (one
token per modality), late (average of expert probabilities, nothing to train). One head per seed in
fusion.train.seeds: metrics give the mean and std per split (val, val_unseen, test_seen, test_unseen) and the
seed ensemble's metrics; every seed's head is saved, and the deployed model is their ensemble (probabilities
averaged, Step_5.ensemble). Early stopping watches val and val_unseen pooled. Modality dropout in training makes the heads robust to a missing modality; the
ensemble is also evaluated on test_seen with each modality removed. With fusion.finetune.enabled the experts' top layers then train with the head from
the shards. Writes models/mm_fusion/<method>/ (model.safetensors + fusion.json + predictions),
metrics/fusion_<method>.json (quality), reports/fusion_<method>.json (seeds, gates, timings, training) and
metrics/plots/fusion_<method>/ (ROC, PR, confusion; gate weights per class for gated).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from core import distributed
from core.cli import run_cli
from core.files import atomic_dir, clean_stale_temps, write_json
from core.params import section
from core.seed import pick_device, seed_everything
from Step_2.ocr import OcrConfig
from Step_3.reader import ShardReader, class_counts, filled_splits
from Step_3.splits import EVALUATED, SELECTION
from Step_4.config import TrainConfig
from Step_4.engine import FitResult, classification, fit, predict
from Step_4.expert import save_expert
from Step_4.features.tensors import resident, stack_rows, tensor_batches
from Step_4.registry import load_expert
from Step_4.scores import ensemble_probs, headline, split_metrics, summarize, truth_of, write_report
from Step_5.config import FusionConfig
from Step_5.data import dropout_batches, load_fusion_split, save_predictions, tensors_of
from Step_5.ensemble import seed_ensemble
from Step_5.finetune import EndToEndFusion, finetune
from Step_5.models import FUSIONS, FusionDims, create_fusion, fusion_params


def train_head(model, data: dict, cfg: FusionConfig, t: TrainConfig, meta: dict, device: str, live,
               method: str) -> FitResult:
    """Fit the fusion head on the cached embeddings of the labelled train rows (early stopping on val and
    val_unseen pooled)."""
    train = resident(tensors_of(data["train"]), device)
    val = resident(stack_rows([tensors_of(data[s]) for s in SELECTION if s in data]), device)
    objective = classification(t, class_counts(meta), lambda: tensor_batches(val, 1024, shuffle=False),
                               positive=meta["positive_index"], device=device, desc=f"fusion {method}")
    return fit(model, objective, cfg=t, device=device, live=live, desc=f"fusion {method}",
               train_batches=lambda e: dropout_batches(train, t.batch_size, cfg.modality_dropout, t.seed, e,
                                                       cfg.feature_dropout, tuple(cfg.modalities)),
               steps_per_epoch=math.ceil(len(train["label"]) / t.batch_size))


def probs_of(model, data: dict, device: str, drop: int | None = None) -> np.ndarray:
    """Probabilities (N, C) for every row of a split, optionally with modality number `drop` removed."""
    tensors = {k: v for k, v in data.items() if torch.is_tensor(v)}
    if drop is not None:
        tensors["mask"] = tensors["mask"].clone()
        tensors["mask"][:, drop] = False
    return predict(model, tensor_batches(tensors, 1024, shuffle=False), device)[1]


@torch.no_grad()
def gate_statistics(model, data: dict, device: str, classes: list[str], modalities: list[str]) -> dict:
    """Mean gate weight per modality, per true class and overall."""
    model.eval()
    tensors = {k: v.to(device) for k, v in tensors_of(data).items()}
    weights = model.gates(tensors)[0].cpu().numpy()
    labels = tensors["label"].cpu().numpy()
    stats = {"all": {m: round(float(weights[:, i].mean()), 4) for i, m in enumerate(modalities)}}
    for c, name in enumerate(classes):
        rows = weights[labels == c]
        if len(rows):
            stats[name] = {m: round(float(rows[:, i].mean()), 4) for i, m in enumerate(modalities)}
    return stats


def write_gate_plot(gates: dict, path: Path) -> None:
    write_json(path, [{"class_modality": f"{c} · {m}", "mean_gate": w}
                      for c, per in gates["test_seen"].items() if c != "all" for m, w in per.items()])


def finetune_end_to_end(model, cfg: FusionConfig, args, reader: ShardReader, ids: dict, device: str, live):
    """The experts' top layers train with the head from the shards; returns result, scores, removal, experts."""
    experts = {m: load_expert(Path(args.experts) / f"{m}_expert", device)[0] for m in cfg.modalities}
    e2e = EndToEndFusion(experts=experts, head=model, modalities=cfg.modalities)
    result, scores, removal = finetune(e2e, cfg.finetune, cfg.train, reader=reader, ids=ids,
                                      modality_dropout=cfg.modality_dropout, device=device, live=live)
    return result, scores, removal, experts


def train_seeds(method: str, params: dict, dims: FusionDims, data: dict, cfg: FusionConfig, meta: dict, device: str,
                live) -> tuple[list, list[FitResult | None], list[dict]]:
    """One head per seed: (models, fits (None when nothing trains), per seed {split: probabilities})."""
    models, fits, runs = [], [], []
    for seed in cfg.train.seeds:
        seed_everything(seed)
        model = create_fusion(method, dims, params)
        trainable = any(p.requires_grad for p in model.parameters())
        fits.append(train_head(model, data, cfg, cfg.train.for_seed(seed), meta, device,
                               live if not models else None, method) if trainable else None)
        runs.append({s: probs_of(model, data[s], device) for s in EVALUATED if s in data})
        models.append(model)
    return models, fits, runs


def run(method: str, args) -> None:
    cfg = section(FusionConfig, "fusion", args.params)
    params = fusion_params(method, getattr(cfg, method))
    reader = ShardReader(args.shards)
    meta = reader.meta
    classes, positive = meta["classes"], meta["positive_index"]
    device = distributed.init(pick_device(cfg.device))  # several processes under torchrun
    data = {s: load_fusion_split(Path(args.embeddings), s, cfg.modalities, n_classes=len(classes),
                                 shard_ids=sorted(x["id"] for x in reader.samples(s, decode_images=False)))
            for s in filled_splits(meta)}
    dims = FusionDims(inputs={m: data["train"][m].shape[1] for m in cfg.modalities}, n_classes=len(classes))
    from dvclive import Live

    live = Live(dir=f"dvclive/fusion_{method}", save_dvc_exp=False, dvcyaml=None, report=None) \
        if distributed.is_main() else None
    models, fits, runs = train_seeds(method, params, dims, data, cfg, meta, device, live)
    result, seeds = fits[0], cfg.train.seeds
    model = seed_ensemble(models)  # the deployed model: the seeds' probabilities averaged
    summary = result.summary() if result else {"best_epoch": 0, "epochs_run": 0}
    throughput = {"train_samples_per_s": result.samples_per_s} if result else {}
    removal = {m: probs_of(model, data["test_seen"], device, drop=i) for i, m in enumerate(cfg.modalities)}
    tuned = None
    if cfg.finetune.enabled and result:  # the first seed's head, with its experts, tuned end to end
        ids = {s: d["id"] for s, d in data.items()}
        model = models[0]
        tuned_result, runs, removal, tuned = finetune_end_to_end(model, cfg, args, reader, ids, device, live)
        summary["finetune"], seeds = tuned_result.summary(), seeds[:1]
        throughput["finetune_samples_per_s"] = tuned_result.samples_per_s
    deployed = ensemble_probs(runs)

    def write() -> None:  # rank 0 only: every rank trained and scored alike
        if not result:  # nothing trained (late fusion): log the validation scores once
            for key, value in split_metrics(data["val"]["label"].numpy(), runs[0]["val"], positive).items():
                if key != "n":
                    live.log_metric(f"val/{key}", value)
            live.next_step()
        live.end()
        test_labels = data["test_seen"]["label"].numpy()
        report = {**summarize(runs, truth_of(data, "label", "true_label"), positive, seeds), "method": method,
                  "params": params, "parameters": sum(p.numel() for p in models[0].parameters()),
                  "training": summary, "throughput": throughput,
                  "modality_removal_test_seen": {f"without_{m}": split_metrics(test_labels, p, positive)
                                                 for m, p in removal.items()}}
        if hasattr(model, "gates") and tuned is None:
            report["gates"] = {s: gate_statistics(model, data[s], device, classes, cfg.modalities)
                               for s in EVALUATED if s in data}
            write_gate_plot(report["gates"], Path(args.metrics_dir) / "plots" / f"fusion_{method}" / "gates.json")
        write_report(f"fusion_{method}", report, probs=deployed["test_seen"], labels=test_labels, classes=classes,
                     positive=positive, metrics_dir=Path(args.metrics_dir), reports_dir=Path(args.reports_dir))
        ocr_settings = dataclasses.asdict(section(OcrConfig, "ocr", args.params).settings)
        save_fusion(model.cpu(), Path(args.model), method=method, params=params, dims=dims, meta=meta,
                    modalities=cfg.modalities, experts_dir=args.experts, ocr_settings=ocr_settings, seeds=seeds,
                    predictions=deployed, ids={s: data[s]["id"] for s in deployed}, tuned_experts=tuned)
        print(f"fusion_{method}: {headline(report)}")

    distributed.on_main(write)
    distributed.finish()


def save_fusion(model, folder: Path, *, method: str, params: dict, dims: FusionDims, meta: dict, modalities: list[str],
                experts_dir: str, ocr_settings: dict, seeds: list[int], predictions: dict, ids: dict[str, list[str]],
                tuned_experts: dict | None = None) -> None:
    """model.safetensors (every seed's head: Step_5.ensemble) + fusion.json (method, sizes, classes, seeds, the
    experts used, the OCR settings) + predictions.safetensors (the seed ensemble's; see save_predictions). Experts fine-tuned end to end are saved inside the folder (experts/<modality>_expert/)."""
    experts = {m: f"{experts_dir}/{m}_expert" for m in modalities}
    clean_stale_temps(folder.parent, folder.name)
    with atomic_dir(folder) as tmp:
        for m, expert in (tuned_experts or {}).items():
            save_expert(expert.cpu(), tmp / "experts" / f"{m}_expert", classes=meta["classes"],
                        extra={"tabular_schema": meta["tabular"], "text_source": meta["text_source"]})
            experts[m] = f"{folder}/experts/{m}_expert"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()} or {"_empty": torch.zeros(0)},
                  str(tmp / "model.safetensors"))
        save_predictions(tmp / "predictions.safetensors", predictions, ids)
        write_json(tmp / "fusion.json", {
            "method": method, "params": params, "inputs": dims.inputs, "classes": meta["classes"],
            "positive_index": meta["positive_index"], "modalities": modalities, "seeds": list(seeds), "experts": experts,
            "ocr_settings": ocr_settings})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.train_fusion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=sorted(FUSIONS), help="fusion method")
    parser.add_argument("--params", default="params.yaml", help="params file (sections fusion, ocr)")
    parser.add_argument("--shards", default="data/shards", help="shard folder or URL prefix (meta.json; shards when "
                                                                "fine-tuning)")
    parser.add_argument("--embeddings", default="data/embeddings", help="expert embedding cache root")
    parser.add_argument("--experts", default="models", help="folder holding <modality>_expert/ (recorded for predict)")
    parser.add_argument("--model", required=True, help="output folder, e.g. models/mm_fusion/gated")
    parser.add_argument("--metrics-dir", default="metrics", help="folder for fusion_<method>.json (quality) and plots")
    parser.add_argument("--reports-dir", default="reports", help="folder for fusion_<method>.json: seeds, gates, "
                                                                  "timings, training")
    args = parser.parse_args()
    run(args.method, args)


if __name__ == "__main__":
    run_cli(main)
