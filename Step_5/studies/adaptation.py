"""Stage `adaptation`: how fast the labelled memory adapts to a new trend → metrics/adaptation.json.

On the cached expert embeddings and the deployed fusion model's saved predictions (no retraining). For each trend
kind (caption frame, target group) of test_unseen and each draw (seeds study.seed, +1, ...): every trend gives a
pool of up to max(study.k) memes, label-stratified and at most half of the trend; the evaluation set is test_unseen
minus every pool, the same for every k of that draw. For each k the memory is the base memory plus the first k
memes of every trend's pool, and the evaluation set is scored with combine(head, kNN). Compared on the same sets:
  head                 the deployed head alone (memory weight 0);
  transfer_val_unseen  k memes of each of val_unseen's frames (other trends) instead, scored on the frame
                       evaluation sets (all of test_unseen when test_unseen records no frames);
  finetune_frame       no memory: a logistic regression on [memory key, head logit] fitted on the base rows the
                       head has predictions for (val: the head trained on train, its logits there are overconfident)
                       plus the k new memes of each frame, these weighted study.finetune_weight.
A sweep of memory weight x temperature at k = 0 on val_unseen (never a test split) shows how the defaults were
chosen. The memory's own settings come from params.yaml (memory); only the base memory is used, never the users'
additions. AUROC: mean and std (over draws) per k.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from core.cli import run_cli
from core.errors import PipelineError
from core.files import read_json, write_json
from core.params import PARAMS_FILE, section
from Step_5.data import check_same_ids, load_predictions
from Step_5.memory_config import MemoryConfig
from Step_5.memory_store import LabelledMemory, combine, embedding_keys
from Step_5.studies.trends import KINDS, draw_pools, first_k, trend_values

CURVES = ("memory_frame", "memory_group", "transfer_val_unseen", "finetune_frame")


@dataclass
class Scored:
    """The labelled memes of one split: ids, memory keys (N, D), class labels (N,), whether positive (N,), and
    the head's positive-class probability and logit (N,)."""

    ids: list[str]
    keys: torch.Tensor
    labels: np.ndarray
    positive: np.ndarray
    p_head: np.ndarray
    logit: np.ndarray

    def features(self, rows) -> np.ndarray:
        """[key, head logit] rows for the logistic regression."""
        return np.hstack([self.keys[rows].numpy(), self.logit[rows, None]])


def load_split(embeddings: Path, split: str, weights: dict, predictions: dict, positive: int) -> Scored:
    part = embedding_keys(embeddings, split, weights)
    check_same_ids(f"split '{split}': the deployed model's predictions", predictions[split]["ids"], part["ids"],
                   "the embeddings")
    log_p = predictions[split]["log_probs"][:, positive].double()
    logit = log_p - torch.log1p(-log_p.exp().clamp(max=1 - 1e-7))
    keep = (part["labels"] >= 0).numpy()
    labels = part["labels"].numpy()[keep]
    return Scored([i for i, k in zip(part["ids"], keep) if k], part["keys"][torch.from_numpy(keep)], labels,
                  labels == positive, log_p.exp().numpy()[keep], logit.numpy()[keep])


def stack(parts: list[Scored]) -> Scored:
    return Scored(sum((p.ids for p in parts), []), torch.cat([p.keys for p in parts]),
                  *(np.concatenate([getattr(p, f) for p in parts]) for f in ("labels", "positive", "p_head", "logit")))


def auroc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """AUROC, or None when the memes hold one class only."""
    return float(roc_auc_score(positive, scores)) if 0 < positive.sum() < len(positive) else None


def memory_aurocs(base: LabelledMemory, source: Scored, target: Scored, pools: dict, rows: np.ndarray,
                  ks: list[int]) -> tuple[list, list]:
    """Per k: AUROC on target's `rows` of combine(head, kNN) with the first k memes of every pool (rows of
    `source`) added to the base memory; and the number of memes added."""
    scores, added = [], []
    for k in ks:
        new = first_k(pools, k)
        memory = base.copy()
        memory.add([source.ids[r] for r in new], source.keys[new], torch.from_numpy(source.labels[new]))
        p_knn = memory.knn_probability(target.keys[rows])
        scores.append(auroc(target.positive[rows], combine(torch.from_numpy(target.p_head[rows]), p_knn,
                                                             memory.weight).numpy()))
        added.append(len(new))
    return scores, added


def finetune_aurocs(fit: Scored | None, target: Scored, pools: dict, rows: np.ndarray, ks: list[int],
                    weight: float) -> tuple[list, list]:
    """Per k: AUROC on target's `rows` of a logistic regression on [key, head logit], fitted on `fit` plus the
    first k memes of every pool (sample weight `weight`)."""
    scores, added = [], []
    for k in ks:
        new = first_k(pools, k)
        parts = ([fit] if fit is not None else [])
        x = np.vstack([p.features(slice(None)) for p in parts] + [target.features(new)])
        y = np.concatenate([p.positive for p in parts] + [target.positive[new]])
        w = np.concatenate([np.ones(len(p.ids)) for p in parts] + [np.full(len(new), weight)])
        if len(set(y.tolist())) < 2:
            scores.append(None)
        else:
            model = LogisticRegression(max_iter=5000).fit(x, y, sample_weight=w)
            scores.append(auroc(target.positive[rows], model.predict_proba(target.features(rows))[:, 1]))
        added.append(len(new))
    return scores, added


def run_draws(cfg: MemoryConfig, base: LabelledMemory, test: Scored, trends: dict, transfer, fit) -> dict:
    """{curve: [per draw {'auroc': [per k], 'added': [per k], 'head', 'eval_size', 'trends'}]}."""
    ks, size, found = cfg.study.k, max(cfg.study.k), {}
    for draw in range(cfg.study.draws):
        seed, frame_rows = cfg.study.seed + draw, None
        for kind in (k for k in KINDS if trends.get(k) is not None):
            pools, rows = draw_pools(trends[kind], test.labels, size, np.random.default_rng([seed, KINDS.index(kind)]))
            info = {"head": auroc(test.positive[rows], test.p_head[rows]), "eval_size": len(rows), "trends": len(pools)}
            scores, added = memory_aurocs(base, test, test, pools, rows, ks)
            found.setdefault(f"memory_{kind}", []).append({**info, "auroc": scores, "added": added})
            if kind == "frame":
                frame_rows = rows
                scores, added = finetune_aurocs(fit, test, pools, rows, ks, cfg.study.finetune_weight)
                found.setdefault("finetune_frame", []).append({**info, "auroc": scores, "added": added})
        if transfer is not None:
            rows = frame_rows if frame_rows is not None else np.arange(len(test.ids))
            pools, _ = draw_pools(transfer[1], transfer[0].labels, size, np.random.default_rng([seed, len(KINDS)]))
            scores, added = memory_aurocs(base, transfer[0], test, pools, rows, ks)
            found.setdefault("transfer_val_unseen", []).append({
                "head": auroc(test.positive[rows], test.p_head[rows]), "eval_size": len(rows), "trends": len(pools),
                "auroc": scores, "added": added})
    return found


def mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def summarise(draws: list[dict], ks: list[int]) -> dict:
    """Per k: AUROC mean and std over draws, the head's on the same sets, the gains; with the sets' sizes."""
    rows, head = [], mean([d["head"] for d in draws])
    for i, k in enumerate(ks):
        scores = [d["auroc"][i] for d in draws if d["auroc"][i] is not None]
        rows.append({"k": k, "auroc": mean(scores), "auroc_std": round(float(np.std(scores)), 4) if scores else None,
                     "head_auroc": head, "memes_added": mean([d["added"][i] for d in draws])})
    for row in rows:
        row["gain_over_k0"] = None if None in (row["auroc"], rows[0]["auroc"]) else round(row["auroc"] - rows[0]["auroc"], 4)
        row["gain_over_head"] = None if None in (row["auroc"], head) else round(row["auroc"] - head, 4)
    return {"draws": len(draws), "trends": mean([d["trends"] for d in draws]),
            "eval_size": mean([d["eval_size"] for d in draws]), "rows": rows}


def sweep(base: LabelledMemory, val: Scored, study) -> dict:
    """AUROC on val_unseen of every weight x temperature at k = 0 (the base memory alone)."""
    grid = []
    for temperature in study.sweep_temperatures:
        memory = base.copy()
        memory.temperature = temperature
        p_knn = memory.knn_probability(val.keys)
        for weight in study.sweep_weights:
            score = auroc(val.positive, combine(torch.from_numpy(val.p_head), p_knn, weight).numpy())
            grid.append({"weight": weight, "temperature": temperature, "auroc": mean([score])})
    best = max(grid, key=lambda g: -1 if g["auroc"] is None else g["auroc"]) if grid else None
    return {"split": "val_unseen", "k": 0, "head_auroc": mean([auroc(val.positive, val.p_head)]), "grid": grid,
            "best": best}


def deployed(comparison: Path, fusion_models: Path, classes: list[str]) -> tuple[str, int, dict]:
    """The deployed fusion (comparison's best_fusion): its name, positive class index and saved predictions."""
    name = read_json(comparison)["best_fusion"]
    folder = fusion_models / name.removeprefix("fusion_")
    info = read_json(folder / "fusion.json")
    if info["classes"] != classes:
        raise PipelineError(f"{folder} predicts {info['classes']}, the memory holds {classes}; rerun dvc repro memory")
    return name, info["positive_index"], load_predictions(folder / "predictions.safetensors")


def study(args: argparse.Namespace, cfg: MemoryConfig) -> dict:
    base = LabelledMemory.load(Path(args.memory) / "memory.safetensors")
    weights = {m: w for m, _, w in base.layout}
    if weights != cfg.modalities:
        raise PipelineError(f"{args.memory} keys memes by {weights}, params memory.modalities says {cfg.modalities}; "
                            "rebuild it (dvc repro memory)")
    base.top_k, base.temperature, base.weight = cfg.neighbours, cfg.temperature, cfg.weight
    name, positive, predictions = deployed(Path(args.comparison), Path(args.fusion_models), base.classes)
    result = {"deployed": name, "memory": {"modalities": weights, "neighbours": cfg.neighbours,
                                           "temperature": cfg.temperature, "weight": cfg.weight, "size": len(base)},
              "k": cfg.study.k, "curves": {}, "skipped": {}}
    if not len(predictions.get("test_unseen", {}).get("ids", [])):
        result["skipped"]["all"] = "the data has no test_unseen split: there is no new trend to adapt to"
        return result
    test = load_split(Path(args.embeddings), "test_unseen", weights, predictions, positive)
    trends = {kind: trend_values(args.shards, "test_unseen", kind, test.ids) for kind in KINDS}
    for kind in KINDS:
        if not any(trends[kind]):
            trends[kind] = None
            result["skipped"][f"memory_{kind}"] = (f"test_unseen records no meta.{kind} (only synthetic memes do): "
                                                   f"the {kind} curve is skipped")
    transfer = None
    if len(predictions.get("val_unseen", {}).get("ids", [])):
        val = load_split(Path(args.embeddings), "val_unseen", weights, predictions, positive)
        result["sweep_val_unseen"] = sweep(base, val, cfg.study)
        frames = trend_values(args.shards, "val_unseen", "frame", val.ids)
        transfer = (val, frames) if any(frames) else None
    if transfer is None:
        result["skipped"]["transfer_val_unseen"] = "val_unseen is empty or records no meta.frame: no other trend"
    fits = [load_split(Path(args.embeddings), s, weights, predictions, positive) for s in cfg.splits if s in predictions]
    found = run_draws(cfg, base, test, trends, transfer, stack(fits) if fits else None)
    result["curves"] = {curve: summarise(found[curve], cfg.study.k) for curve in CURVES if curve in found}
    return result


def plot_rows(result: dict) -> list[dict]:
    """One row per k: {'k', <curve>: auroc, ..., 'head': auroc of the head alone on the frame (else group) sets}.

    One field per curve, so that `dvc plots` draws each curve as its own line."""
    reference = result["curves"].get("memory_frame") or result["curves"].get("memory_group")
    fields = {curve: summary["rows"] for curve, summary in result["curves"].items()}
    if reference:
        fields["head"] = [{"k": r["k"], "auroc": r["head_auroc"]} for r in reference["rows"]]
    by_k: dict[int, dict] = {}
    for curve, rows in fields.items():
        for r in rows:
            by_k.setdefault(r["k"], {"k": r["k"]})[curve] = r["auroc"]
    return [by_k[k] for k in sorted(by_k)]


def quality(result: dict) -> dict:
    """What `dvc metrics diff` compares: per curve and k the AUROCs and gains; counts and the sweep grid stay in
    the report."""
    keep = ("auroc", "auroc_std", "head_auroc", "gain_over_k0", "gain_over_head")
    found = {"curves": {curve: {f"k{r['k']}": {key: r[key] for key in keep} for r in summary["rows"]}
                        for curve, summary in result["curves"].items()}}
    sweep_found = result.get("sweep_val_unseen")
    if sweep_found and sweep_found["best"]:
        found["sweep_val_unseen"] = {"head_auroc": sweep_found["head_auroc"], "best_auroc": sweep_found["best"]["auroc"]}
    return found


def print_table(result: dict) -> None:
    def cell(value, std=None) -> str:
        return "   -   " if value is None else f"{value:.3f}" + (f" ± {std:.3f}" if std is not None else "")

    print(f"adaptation: test_unseen AUROC (mean ± std over draws) as k memes per trend join the memory; "
          f"deployed {result['deployed']}")
    print(f"{'curve':<22}" + "".join(f"{'k=' + str(k):<16}" for k in result["k"]) + "head (same sets)")
    for curve, summary in result["curves"].items():
        print(f"{curve:<22}" + "".join(f"{cell(r['auroc'], r['auroc_std']):<16}" for r in summary["rows"])
              + cell(summary["rows"][0]["head_auroc"]))
    for what, why in result["skipped"].items():
        print(f"skipped {what}: {why}")
    found = result.get("sweep_val_unseen")
    if found and found["best"]:
        print(f"sweep on val_unseen (k=0, head {cell(found['head_auroc'])}): " + ", ".join(
            f"w={g['weight']} T={g['temperature']}: {cell(g['auroc'])}" for g in found["grid"]))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.studies.adaptation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", default="data/embeddings", help="expert embeddings root")
    parser.add_argument("--memory", default="models/memory", help="base memory folder (stage memory)")
    parser.add_argument("--fusion-models", default="models/mm_fusion", help="folder of the fusion models")
    parser.add_argument("--comparison", default="metrics/comparison.json", help="names the deployed fusion")
    parser.add_argument("--shards", default="data/shards", help="shards (each meme's frame and group)")
    parser.add_argument("--metrics", default="metrics/adaptation.json", help="output: AUROC per curve and k")
    parser.add_argument("--report", default="reports/adaptation.json",
                        help="output: the whole study (memes added, evaluation sizes, skipped curves, the sweep grid)")
    parser.add_argument("--plots", default="metrics/plots/adaptation.json",
                        help="output: one row per k, one field per curve")
    parser.add_argument("--params", default=PARAMS_FILE, help="params file (its memory section)")
    args = parser.parse_args()
    result = study(args, section(MemoryConfig, "memory", args.params))
    write_json(args.report, result)
    write_json(args.metrics, quality(result))
    write_json(args.plots, plot_rows(result))
    print_table(result)


if __name__ == "__main__":
    run_cli(main)
