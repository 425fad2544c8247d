"""Stage `compare`: every expert and fusion method side by side → metrics/comparison.json.

The best expert and the best fusion are chosen on the mean AUROC of their seed ensembles over val and val_unseen
(val alone for data without val_unseen; never a test split). The deployed model is the best fusion's seed
ensemble: `deployed_minus_best_expert` compares the two ensembles on test_seen and test_unseen, with the seed
noise of an ensemble (2·sqrt(std_a² + std_b²) / sqrt(seeds)). Per-seed differences follow, with their seed
noise 2·sqrt(std_a² + std_b²): best fusion vs best expert, and best fusion vs every other fusion.
With --embeddings and --fusion-models, a paired bootstrap over the test memes (the seed ensembles, same
resamples for both) adds a 95 % interval of the best fusion's AUROC gain over the best expert.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from core.cli import run_cli
from core.errors import PipelineError
from core.files import read_json, write_json
from Step_3.splits import EVALUATED, SELECTION, TESTS
from Step_4.features.tensors import load_embeddings
from Step_4.registry import modalities
from Step_5.data import check_same_ids, load_predictions
from Step_5.models import FUSIONS

KEYS = ("auroc", "macro_f1", "accuracy")


def model_row(report: dict, kind: str) -> dict:
    """Per split the mean ± std over seeds; under 'ensemble' the seed ensemble's metrics (older metrics files
    without it: the per-seed means, from one seed)."""
    row = {"kind": kind, **{s: {v: report[s][v] for k in KEYS for v in (k, f"{k}_std")}
                            for s in EVALUATED if s in report}}
    ensemble = report.get("ensemble", {})
    row["ensemble"] = {s: {k: (ensemble[s] if s in ensemble else report[s])[k] for k in KEYS}
                       for s in EVALUATED if s in report}
    return row


def seed_count(reports_dir: Path | None, name: str) -> int:
    """How many seeds a model's ensemble averages (reports/<name>.json 'seeds'; 1 when unknown)."""
    path = reports_dir / f"{name}.json" if reports_dir else None
    return len(read_json(path).get("seeds", [0])) if path and path.is_file() else 1


def selection_score(row: dict, splits: list[str]) -> float:
    """The seed ensemble's mean AUROC over the selection splits every model was scored on (val alone without
    val_unseen); -1 when none has one."""
    values = [row["ensemble"][s]["auroc"] for s in splits]
    return sum(values) / len(values) if values else -1.0


def contrast(a: dict, b: dict, key: str) -> dict | None:
    """Mean difference a − b of one metric on one split, its seed noise and whether it exceeds it."""
    if a.get(key) is None or b.get(key) is None:
        return None
    diff = a[key] - b[key]
    noise = 2 * math.sqrt(a[f"{key}_std"] ** 2 + b[f"{key}_std"] ** 2)
    return {"diff": round(diff, 4), "seed_noise": round(noise, 4), "beyond_noise": bool(abs(diff) > noise)}


def ensemble_contrast(a: dict, b: dict, split: str, key: str, seeds: int) -> dict | None:
    """The seed ensembles' difference a − b of one metric on one split, and its seed noise: 2·sqrt(std_a² +
    std_b²) of the per-seed scores, divided by sqrt(seeds) (the spread of an average of that many seeds)."""
    ea, eb = a["ensemble"][split].get(key), b["ensemble"][split].get(key)
    if ea is None or eb is None or a[split].get(f"{key}_std") is None or b[split].get(f"{key}_std") is None:
        return None
    noise = 2 * math.sqrt((a[split][f"{key}_std"] ** 2 + b[split][f"{key}_std"] ** 2) / seeds)
    return {"diff": round(ea - eb, 4), "seed_noise": round(noise, 4), "beyond_noise": bool(abs(ea - eb) > noise)}


def paired_bootstrap(labels: np.ndarray, a: np.ndarray, b: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict:
    """AUROC(a) − AUROC(b) over the same resampled memes (those holding both classes): the observed gain, its
    95 % interval, and the share of resamples where a does not beat b."""
    keep = labels >= 0
    labels, a, b = labels[keep], a[keep], b[keep]
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        idx = rng.integers(0, len(labels), len(labels))
        if 0 < labels[idx].sum() < len(idx):  # both classes present
            diffs.append(roc_auc_score(labels[idx], a[idx]) - roc_auc_score(labels[idx], b[idx]))
    diffs = np.array(diffs)
    return {"auroc_gain": round(float(roc_auc_score(labels, a) - roc_auc_score(labels, b)), 4),
            "ci95": [round(float(q), 4) for q in np.percentile(diffs, [2.5, 97.5])],
            "share_not_better": round(float((diffs <= 0).mean()), 4)}


def bootstrap_gain(best_fusion: str, best_expert: str, embeddings: Path, fusion_models: Path, positive: int) -> dict:
    """Paired bootstrap of the saved best fusion against the saved best expert on each test split."""
    modality, method = best_expert.removesuffix("_expert"), best_fusion.removeprefix("fusion_")
    fused = load_predictions(fusion_models / method / "predictions.safetensors")
    result = {}
    for split in (s for s in TESTS if s in fused):
        expert = load_embeddings(embeddings / modality / f"{split}.safetensors")
        check_same_ids(f"split '{split}': the {best_fusion} predictions", fused[split]["ids"], expert["ids"],
                       f"the {best_expert} embeddings")
        labels = (expert["labels"] == positive).int().numpy() - (expert["labels"] < 0).int().numpy()
        scores = torch.softmax(expert.get("ensemble_logits", expert["logits"]).float(), dim=-1)[:, positive].numpy()
        if len(set(labels[labels >= 0])) == 2:
            result[split] = paired_bootstrap(labels, fused[split]["log_probs"][:, positive].exp().numpy(), scores)
    return result


def compare(metrics_dir: Path, experts: list[str], methods: list[str], reports_dir: Path | None = None) -> dict:
    models = {}
    for kind, names in (("expert", [f"{m}_expert" for m in experts]), ("fusion", [f"fusion_{m}" for m in methods])):
        for name in names:
            path = metrics_dir / f"{name}.json"
            if not path.is_file():
                raise PipelineError(f"{path} not found; run its stage first (dvc repro)")
            models[name] = model_row(read_json(path), kind)

    on = [s for s in SELECTION if all(s in r and r[s]["auroc"] is not None for r in models.values())]

    def best(kind: str) -> str:
        return max((n for n, r in models.items() if r["kind"] == kind), key=lambda n: selection_score(models[n], on))

    best_expert, best_fusion = best("expert"), best("fusion")
    splits = [s for s in TESTS if s in models[best_fusion]]

    def versus(other: str) -> dict:
        return {s: {k: contrast(models[best_fusion][s], models[other][s], k) for k in ("auroc", "macro_f1")}
                for s in splits}

    def deployed_versus(other: str) -> dict:
        seeds = min(seed_count(reports_dir, best_fusion), seed_count(reports_dir, other))
        return {s: {k: ensemble_contrast(models[best_fusion], models[other], s, k, seeds)
                    for k in ("auroc", "macro_f1")} for s in splits}

    return {"models": models, "best_expert": best_expert, "best_fusion": best_fusion,
            "selected_on": f"the seed ensemble's mean AUROC over {' and '.join(on)}",
            "deployed_minus_best_expert": deployed_versus(best_expert),
            "fusion_minus_best_expert": versus(best_expert),
            "best_fusion_minus_other_fusions": {n: versus(n) for n, r in models.items()
                                                if r["kind"] == "fusion" and n != best_fusion}}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.studies.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics-dir", default="metrics", help="folder with <model>.json from the expert and "
                                                                  "fusion stages")
    parser.add_argument("--experts", nargs="+", default=list(modalities()),
                        help="expert kinds to compare (default: every registered modality)")
    parser.add_argument("--methods", nargs="+", default=list(FUSIONS),
                        help="fusion methods to compare")
    parser.add_argument("--embeddings", default=None, help="expert embedding root (for the paired bootstrap)")
    parser.add_argument("--fusion-models", default=None, help="folder of the fusion models (for the paired bootstrap)")
    parser.add_argument("--reports-dir", default="reports", help="folder with <model>.json (the seeds each ensemble "
                                                                  "averages: its seed noise)")
    parser.add_argument("--out", default="metrics/comparison.json", help="output file")
    args = parser.parse_args()
    result = compare(Path(args.metrics_dir), args.experts, args.methods, Path(args.reports_dir))
    if args.embeddings and args.fusion_models:
        positive = read_json(Path(args.fusion_models) / result["best_fusion"].removeprefix("fusion_") /
                             "fusion.json")["positive_index"]
        result["paired_bootstrap_test"] = bootstrap_gain(result["best_fusion"], result["best_expert"],
                                                         Path(args.embeddings), Path(args.fusion_models), positive)
    write_json(args.out, result)
    for split, gains in result["deployed_minus_best_expert"].items():
        gain = gains["auroc"]
        if gain:
            print(f"compare: {result['best_fusion']} vs {result['best_expert']} (seed ensembles), {split} AUROC "
                  f"{gain['diff']:+.3f} ({'beyond' if gain['beyond_noise'] else 'within'} seed noise)")
    print("table: python -m Step_5.studies.comparison_table")


if __name__ == "__main__":
    run_cli(main)
