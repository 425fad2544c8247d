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
import dataclasses
import time
from pathlib import Path

from core.cli import run_cli
from core.params import section
from core.seed import pick_device
from Step_6.config import EvaluateConfig, EvaluatePaths
from Step_6.inputs import EvaluationInputs, load_inputs
from Step_6.mistakes import gates_and_mistakes
from Step_6.outputs import finite, write_outputs
from Step_6.robustness import robustness_report
from Step_6.scored_models import load_models
from Step_6.scoring import CalibratedModels, calibrate_models, paired_tests, roc_pr_bands, slice_reports
from Step_6.slices import slice_values
from Step_6.summary import summary_lines


def evaluate(cfg: EvaluateConfig, paths: EvaluatePaths) -> dict:
    """Everything the stage computes, as one report dict: scores, then gates and mistakes, then robustness."""
    started = time.perf_counter()
    data = load_inputs(paths.shards, paths.comparison, paths.embeddings, paths.fusion_models)
    report, calibrated, values = score_report(data, cfg)
    seconds = {"scores": round(time.perf_counter() - started, 1)}

    device = pick_device(cfg.device)
    models = load_models(Path(paths.experts), Path(paths.fusion_models), data.modalities, data.methods, data.classes,
                         device)
    report.update(gates_and_mistakes(models, data, calibrated.probs, values, report["best_fusion"], cfg, device))

    t0 = time.perf_counter()
    report.update(robustness_report(models, data, cfg.robustness, Path(paths.cache), device))
    seconds.update(robustness=round(time.perf_counter() - t0, 1), total=round(time.perf_counter() - started, 1))
    report["run"]["seconds"] = seconds
    return finite(report)


def score_report(data: EvaluationInputs, cfg: EvaluateConfig) -> tuple[dict, CalibratedModels, dict[str, list[dict]]]:
    """The report's sections computed from the models' logits alone (calibration, operating points, paired tests,
    slices, curves), the calibrated models, and every meme's slice values per split."""
    comparison = data.comparison
    calibrated = calibrate_models(data, cfg)
    report: dict = {"classes": data.classes, "positive": data.classes[data.positive], "splits": data.splits,
                    "settings": {k: getattr(cfg, k) for k in ("ece_bins", "bootstrap", "slice_min_size", "seed")},
                    "best_expert": comparison["best_expert"], "best_fusion": comparison["best_fusion"],
                    "selected_on": comparison.get("selected_on", "val auroc"), "calibration": calibrated.calibration, "reliability": calibrated.reliability,
                    "operating_points": calibrated.operating_points}
    report["paired"] = paired_tests(calibrated.scores, data.y, report["best_expert"], report["best_fusion"], cfg)
    values = {s: [slice_values(data.samples[s][i]["meta"], cfg.caption_length_bins, data.samples[s][i]["text"])
                  for i in data.ids[s]] for s in data.splits}
    report["slices"], report["slice_highlights"] = slice_reports(data, calibrated, values, cfg)
    report["curves"] = {name: {s: roc_pr_bands(data.y[s], calibrated.scores[name][s], cfg.bootstrap, cfg.seed)
                               for s in data.splits} for name in (report["best_expert"], report["best_fusion"])}
    return report, calibrated, values


def parse_args() -> argparse.Namespace:
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
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = section(EvaluateConfig, "evaluate", args.params)
    paths = EvaluatePaths(**{f.name: getattr(args, f.name) for f in dataclasses.fields(EvaluatePaths)})
    report = evaluate(cfg, paths)
    write_outputs(report, paths)
    for line in summary_lines(report):
        print(f"evaluate: {line}")


if __name__ == "__main__":
    run_cli(main)
