"""Stage `evaluate`: calibration, operating points, robustness, slices and mistakes of every model.

For each expert (its cached logits) and fusion model (its saved predictions) on val, test_seen and
test_unseen:
  calibration     a temperature fitted on val (NLL); ECE (equal-width and adaptive bins), Brier and NLL
                  before and after, per split; reliability diagrams as DVC plots
  operating pts   thresholds chosen on calibrated val scores: max macro-F1, precision >= evaluate.min_precision,
                  recall >= evaluate.min_recall; precision, recall, flag rate per split with bootstrap intervals
  paired tests    paired bootstrap of AUROC: best fusion vs best expert, best fusion vs every other fusion
  slices          AUROC and macro-F1 per source, content, intent, group, agreement, caption length, with intervals
  mistakes        the most confident mistakes of the best fusion per split
  robustness      image, text and missing-modality conditions through OCR and the models (Step_6.robustness)
Writes metrics/evaluation.json (quality), reports/evaluation.json (everything, read by the report stage),
models/calibration.json (temperatures and thresholds, read by predict) and metrics/plots/evaluation/.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from core.errors import PipelineError, run_cli
from core.files import file_sha256, read_json, write_json
from core.params import build, section
from core.seed import pick_device
from Step_2.engine import OcrSettings
from Step_3.reader import ShardReader, filled_splits
from Step_3.splits import EVALUATED
from Step_4.embeddings import load_embeddings
from Step_5.data import check_same_ids, load_predictions
from Step_6.bootstrap import paired_auroc_difference, rates_with_intervals, resamples
from Step_6.calibration import calibration_measures, fit_temperature, fit_temperature_bias, reliability, softmax
from Step_6.config import EvaluateConfig
from Step_6.models import gate_weights, load_models
from Step_6.robustness import Suite, least_degraded, sample_split
from Step_6.slices import FAMILIES, highlights, slice_quality, slice_values
from Step_6.summary import summary_lines
from Step_6.thresholds import choose_operating_points


def load_expert_embeddings(embeddings: Path, modalities: list[str], splits: list[str],
                           shard_ids: dict[str, list[str]]) -> dict[str, dict[str, dict]]:
    """{modality: {split: cached embeddings}}, each checked to hold exactly the split's shard ids (sorted)."""
    out: dict[str, dict[str, dict]] = {}
    for m in modalities:
        for split in splits:
            data = load_embeddings(embeddings / m / f"{split}.safetensors")
            check_same_ids(f"split '{split}': the {m} embeddings", data["ids"], shard_ids[split], "the shards")
            out.setdefault(m, {})[split] = data
    return out


def load_logits(experts: dict[str, dict[str, dict]], fusion_dir: Path, methods: list[str], splits: list[str],
                shard_ids: dict[str, list[str]]) -> dict[str, dict[str, np.ndarray]]:
    """{model: {split: logits (N, C)}} with rows in shard-id order: the experts' from their embeddings, the
    fusions' from their saved predictions (checked against the shards)."""
    logits = {f"{m}_expert": {s: d["logits"].float().numpy() for s, d in per.items()} for m, per in experts.items()}
    for method in methods:
        predictions = load_predictions(fusion_dir / method / "predictions.safetensors")
        for split in splits:
            if split not in predictions:
                raise PipelineError(f"{fusion_dir / method} has no predictions for '{split}'; rerun the fusion stages")
            check_same_ids(f"split '{split}': the fusion_{method} predictions", predictions[split]["ids"],
                           shard_ids[split], "the shards")
            logits.setdefault(f"fusion_{method}", {})[split] = predictions[split]["log_probs"].float().numpy()
    return logits


def calibrate(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray], bins: int, method: str) -> dict:
    """Temperature (and with 'temperature_bias' a per-class bias) fitted on val; measures and reliability rows
    before and after, per split (labelled rows)."""
    keep = {s: labels[s] >= 0 for s in labels}
    z_val, y_val = logits["val"][keep["val"]], labels["val"][keep["val"]]
    if method == "temperature_bias":
        temperature, bias = fit_temperature_bias(z_val, y_val)
    else:
        temperature, bias = fit_temperature(z_val, y_val), [0.0] * z_val.shape[1]
    out = {"method": method, "temperature": temperature, "bias": bias, "splits": {}, "reliability": {}}
    for split, z in logits.items():
        y = labels[split][keep[split]]
        before, after = softmax(z[keep[split]]), softmax(z[keep[split]], temperature, bias)
        out["splits"][split] = {"before": calibration_measures(before, y, bins),
                                "after": calibration_measures(after, y, bins)}
        out["reliability"][split] = {"before": reliability(before, y, bins), "after": reliability(after, y, bins)}
    return out


def operating_points(scores: dict[str, np.ndarray], y: dict[str, np.ndarray], cfg: EvaluateConfig) -> dict:
    """Thresholds chosen on val; rates with intervals on every split."""
    points = choose_operating_points(y["val"], scores["val"], cfg.min_precision, cfg.min_recall)
    for name, point in points.items():
        for split in scores:
            point[split] = rates_with_intervals(y[split], scores[split], point["threshold"], cfg.bootstrap, cfg.seed)
    return points


def roc_pr_bands(y: np.ndarray, scores: np.ndarray, count: int, seed: int, grid: int = 51) -> dict | None:
    """ROC (TPR at fixed FPR) and PR (precision at fixed recall) curves with bootstrap 95 % bands;
    None when the split holds one class only."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    if len(np.unique(y)) < 2:
        return None
    axis = np.linspace(0, 1, grid)

    def curves(yy, ss):
        fpr, tpr, _ = roc_curve(yy, ss)
        precision, recall, _ = precision_recall_curve(yy, ss)
        return np.interp(axis, fpr, tpr), np.interp(axis, recall[::-1], precision[::-1])

    roc, pr = curves(y, scores)
    rocs, prs = [roc], [pr]
    for rows in resamples(len(y), min(count, 300), seed):
        if 0 < y[rows].sum() < len(rows):
            r, p = curves(y[rows], scores[rows])
            rocs.append(r)
            prs.append(p)
    band = lambda a: np.percentile(np.array(a), [2.5, 97.5], axis=0).round(4).tolist()  # noqa: E731
    return {"axis": axis.round(4).tolist(), "roc": roc.round(4).tolist(), "roc_band": band(rocs),
            "pr": pr.round(4).tolist(), "pr_band": band(prs)}


def finite(node):
    """NaN / inf become None so the JSON is valid and DVC reads it."""
    if isinstance(node, dict):
        return {k: finite(v) for k, v in node.items()}
    if isinstance(node, list):
        return [finite(v) for v in node]
    if isinstance(node, float) and not np.isfinite(node):
        return None
    return node


def paired_tests(scores: dict[str, dict[str, np.ndarray]], y: dict[str, np.ndarray], best_expert: str,
                 best_fusion: str, cfg: EvaluateConfig) -> dict:
    """AUROC differences on the same resamples: best fusion vs best expert, and vs every other fusion."""
    others = [n for n in scores if n.startswith("fusion_") and n != best_fusion]
    out = {}
    for other in [best_expert] + others:
        out[f"{best_fusion}_vs_{other}"] = {s: paired_auroc_difference(y[s], scores[best_fusion][s], scores[other][s],
                                                                        cfg.bootstrap, cfg.seed) for s in y}
    return out


def gates_by_slice(gates: dict[str, np.ndarray], values: dict[str, list[dict]], modalities: list[str]) -> dict:
    """Mean gate weight per modality for every slice value, per split."""
    out = {}
    for split, weights in gates.items():
        for family in FAMILIES:
            column = np.array([v[family] for v in values[split]])
            out.setdefault(split, {})[family] = {
                value: {m: round(float(weights[column == value, i].mean()), 4) for i, m in enumerate(modalities)}
                for value in sorted(set(column))}
    return out


def confident_mistakes(probs: np.ndarray, labels: np.ndarray, ids: list[str], samples: dict[str, dict],
                       classes: list[str], positive: int, gates: np.ndarray | None, modalities: list[str],
                       count: int) -> list[dict]:
    """The `count` labelled memes predicted wrong with the highest calibrated confidence."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero((labels >= 0) & (predicted != labels))
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:count]
    rows = []
    for i in order:
        sample = samples[ids[i]]
        row = {"id": ids[i], "label": classes[labels[i]], "predicted": classes[predicted[i]],
               "confidence": round(float(probs[i, predicted[i]]), 4), "p_positive": round(float(probs[i, positive]), 4),
               "ocr_text": sample["text"], "gold_text": sample["meta"].get("gold_text") or "",
               "source": sample["meta"].get("source")}
        if gates is not None:
            row["gates"] = {m: round(float(gates[i, j]), 4) for j, m in enumerate(modalities)}
        rows.append(row)
    return rows


def fusion_gates(models, experts: dict[str, dict[str, dict]], splits: list[str],
                 device: str) -> tuple[str | None, dict[str, np.ndarray]]:
    """Gate weights of the first gated fusion model on the experts' cached embeddings, per split."""
    gated = next((f for f in models.fusions.values() if hasattr(f.head, "gates")), None)
    if gated is None:
        return None, {}
    out = {}
    for split in splits:
        data = {m: experts[m][split] for m in gated.info["modalities"]}
        mask = torch.stack([data[m]["present"] for m in gated.info["modalities"]], dim=1).to(device)
        out[split] = gate_weights(gated, {m: d["features"].to(device) for m, d in data.items()}, mask).numpy()
    return f"fusion_{gated.method}", out


def quality_only(report: dict) -> dict:
    """The figures that go to metrics/evaluation.json (no intervals, thresholds, counts or lists)."""
    calibration = {name: {s: {f"{k}_{when}": v for when in ("before", "after") for k, v in c["splits"][s][when].items()}
                          for s in c["splits"]} for name, c in report["calibration"].items()}
    points = {name: {op: {s: {k: p[s][k] for k in ("precision", "recall", "flag_rate")} for s in report["splits"]}
                     for op, p in ops.items()} for name, ops in report["operating_points"].items()}
    paired = {pair: {s: {"auroc_diff": r["diff"], "auroc_diff_low": r["ci95"][0], "auroc_diff_high": r["ci95"][1]}
                     for s, r in per.items()} for pair, per in report["paired"].items()}
    robustness = {name: {c: {s: row for s, row in per.items() if row is not None} for c, per in conds.items()}
                  for name, conds in report["robustness"].items()}
    return finite({"calibration": calibration, "operating_points": points, "paired": paired, "robustness": robustness,
                   "robustness_mean_auroc_drop": report["robustness_summary"]["mean_auroc_drop"]})


def evaluate(cfg: EvaluateConfig, args) -> dict:
    """Everything the stage computes, as one report dict."""
    started = time.perf_counter()
    reader = ShardReader(args.shards)
    meta, classes, positive = reader.meta, reader.meta["classes"], reader.meta["positive_index"]
    splits = [s for s in EVALUATED if s in filled_splits(meta)]
    samples = {s: {x["id"]: x for x in reader.samples(s, decode_images=False)} for s in splits}
    ids = {s: sorted(samples[s]) for s in splits}
    comparison = read_json(args.comparison)
    modalities = [n.removesuffix("_expert") for n in comparison["models"] if n.endswith("_expert")]
    methods = [n.removeprefix("fusion_") for n in comparison["models"] if n.startswith("fusion_")]
    if not methods:
        raise PipelineError(f"{args.comparison} lists no fusion model; run the fusion stages first (dvc repro)")
    if "val" not in splits:
        raise PipelineError("the shards hold no val memes: calibration and operating points are fitted on val; "
                            "give shard.fractions a val share")
    experts = load_expert_embeddings(Path(args.embeddings), modalities, splits, ids)
    logits = load_logits(experts, Path(args.fusion_models), methods, splits, ids)
    labels = {s: np.array([int(samples[s][i]["meta"]["label"]) for i in ids[s]]) for s in splits}
    keep = {s: labels[s] >= 0 for s in splits}
    y = {s: (labels[s][keep[s]] == positive).astype(int) for s in splits}
    report: dict = {"classes": classes, "positive": classes[positive], "splits": splits,
                    "settings": {k: getattr(cfg, k) for k in ("ece_bins", "bootstrap", "slice_min_size", "seed")},
                    "best_expert": comparison["best_expert"], "best_fusion": comparison["best_fusion"],
                    "calibration": {}, "reliability": {}, "operating_points": {}, "slices": {}, "slice_highlights": {}}
    calibrated, scores = {}, {}
    for name, per_split in logits.items():
        c = calibrate(per_split, labels, cfg.ece_bins, cfg.calibration)
        report["reliability"][name] = c.pop("reliability")
        report["calibration"][name] = c
        calibrated[name] = {s: softmax(z, c["temperature"], c["bias"]) for s, z in per_split.items()}
        scores[name] = {s: calibrated[name][s][keep[s], positive] for s in splits}
        report["operating_points"][name] = operating_points(scores[name], y, cfg)
    report["paired"] = paired_tests(scores, y, report["best_expert"], report["best_fusion"], cfg)
    values = {s: [slice_values(samples[s][i]["meta"], cfg.caption_length_bins, samples[s][i]["text"]) for i in ids[s]]
              for s in splits}
    for name in logits:
        threshold = report["operating_points"][name]["max_f1"]["threshold"]
        for s in splits:
            kept_values = [v for v, k in zip(values[s], keep[s]) if k]
            per_family = {f: slice_quality(y[s], scores[name][s], threshold, [v[f] for v in kept_values],
                                           cfg.bootstrap, cfg.seed) for f in FAMILIES}
            report["slices"].setdefault(name, {})[s] = per_family
            report["slice_highlights"].setdefault(name, {})[s] = highlights(per_family, cfg.slice_min_size)
    report["curves"] = {name: {s: roc_pr_bands(y[s], scores[name][s], cfg.bootstrap, cfg.seed) for s in splits}
                        for name in (report["best_expert"], report["best_fusion"])}
    seconds = {"scores": round(time.perf_counter() - started, 1)}

    device = pick_device(cfg.device)
    models = load_models(Path(args.experts), Path(args.fusion_models), modalities, methods, classes, device)
    gated_name, gates = fusion_gates(models, experts, splits, device)
    gated_modalities = models.fusions[gated_name.removeprefix("fusion_")].info["modalities"] if gated_name else []
    report["gates_model"] = gated_name
    report["gates_by_slice"] = gates_by_slice(gates, values, gated_modalities) if gates else {}
    best = report["best_fusion"]
    report["mistakes"] = {s: confident_mistakes(
        calibrated[best][s], labels[s], ids[s], samples[s], classes, positive, gates.get(s), gated_modalities, cfg.mistakes) for s in splits}

    t0 = time.perf_counter()
    ocr = build(OcrSettings, next(iter(models.fusions.values())).info.get("ocr_settings", {}), where="ocr_settings")
    suite = Suite(models, ocr, cfg.robustness, Path(args.cache), meta["tabular"], device)
    sampled = {s: sample_split(reader, s, cfg.robustness.samples_per_split, cfg.robustness.seed) for s in splits}
    report["robustness"] = suite.run(sampled, positive)
    report["robustness_conditions"] = ["clean"] + list(cfg.robustness.conditions)
    report["robustness_summary"] = least_degraded(report["robustness"], splits)
    report["robustness_samples"] = {s: len(v) for s, v in sampled.items()}
    report["run"] = {"caches": suite.counts}  # facts of this run (cache hits, seconds): written apart
    seconds.update(robustness=round(time.perf_counter() - t0, 1), total=round(time.perf_counter() - started, 1))
    report["run"]["seconds"] = seconds
    return finite(report)


def model_file(name: str, args) -> Path:
    """The weights file of a model by its comparison name (text_expert, fusion_gated, ...)."""
    if name.startswith("fusion_"):
        return Path(args.fusion_models) / name.removeprefix("fusion_") / "model.safetensors"
    return Path(args.experts) / name / "model.safetensors"


def calibration_file(report: dict, args) -> dict:
    """What predict needs: per model the temperature (and bias), the operating points' thresholds, and the
    sha256 of the weights they were fitted for, so a retrained model never meets a stale calibration."""
    return {"positive": report["positive"], "classes": report["classes"], "models": {
        name: {"model_sha256": file_sha256(weights) if (weights := model_file(name, args)).is_file() else None,
               "temperature": c["temperature"], "bias": c["bias"],
               "operating_points": {op: {"threshold": p["threshold"], "reached_on_val": p["reached_on_val"]}
                                    for op, p in report["operating_points"][name].items()}}
        for name, c in report["calibration"].items()}}


def write_outputs(report: dict, args) -> None:
    """Quality to --metrics, run facts (timings, cache counts) to --run-report, the rest (deterministic for the
    same inputs, so the report stage reruns only when a figure changed) to --report."""
    run = report.pop("run")
    write_json(Path(args.metrics), quality_only(report))
    write_json(Path(args.report), report)
    write_json(Path(args.run_report), run)
    write_json(Path(args.calibration), calibration_file(report, args))
    plots = Path(args.plots)
    for name, per_split in report["reliability"].items():
        for when in ("before", "after"):
            write_json(plots / f"reliability_{when}" / f"{name}.json",
                       [{"confidence": r["confidence"], "accuracy": r["accuracy"]} for r in per_split["test_seen"][when]])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_6.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (section 'evaluate')")
    parser.add_argument("--shards", default="data/shards", help="shard folder or URL prefix (labels, slices, images)")
    parser.add_argument("--embeddings", default="data/embeddings", help="the experts' cached embeddings")
    parser.add_argument("--experts", default="models", help="folder holding <modality>_expert/")
    parser.add_argument("--fusion-models", default="models/mm_fusion", help="folder holding <method>/")
    parser.add_argument("--comparison", default="metrics/comparison.json", help="which models exist, best picks")
    parser.add_argument("--cache", default="data/eval_cache", help="corrupted images, their OCR and features")
    parser.add_argument("--metrics", default="metrics/evaluation.json", help="output: quality figures")
    parser.add_argument("--report", default="reports/evaluation.json", help="output: everything (report stage input)")
    parser.add_argument("--run-report", default="reports/evaluation_run.json", help="output: seconds, cache counts")
    parser.add_argument("--calibration", default="models/calibration.json", help="output: temperatures, thresholds")
    parser.add_argument("--plots", default="metrics/plots/evaluation", help="output: reliability diagrams")
    args = parser.parse_args()
    cfg = section(EvaluateConfig, "evaluate", args.params)
    report = evaluate(cfg, args)
    write_outputs(report, args)
    for line in summary_lines(report):
        print(f"evaluate: {line}")


if __name__ == "__main__":
    run_cli(main)
