"""Seed repeats: mean ± std per split, metrics against the true label, and verdicts against the seed noise."""
import json

import numpy as np
import pytest

from Step_4.scores import summarize
from Step_5.studies.compare import compare, contrast
from Step_5.studies.comparison_table import format_table


def probs_for(scores):
    scores = np.asarray(scores, dtype=float)
    return np.stack([1 - scores, scores], axis=1)


def test_summary_gives_mean_and_sample_std_over_seeds_and_true_label_metrics():
    labels = np.array([0, 0, 1, 1, -1])
    truth = np.array([0, 1, 1, 1, 0])  # one annotator error on row 1; row 4 unlabelled but its truth is known
    runs = [{"test_seen": probs_for([0.1, 0.2, 0.8, 0.9, 0.3])},  # perfect ranking: auroc 1
            {"test_seen": probs_for([0.1, 0.9, 0.8, 0.2, 0.3])}]  # auroc 0.5
    report = summarize(runs, {"test_seen": {"labels": labels, "true_labels": truth}}, positive=1, seeds=[3, 4])
    scores = report["test_seen"]
    assert scores["n"] == 4 and scores["auroc"] == 0.75 and scores["auroc_std"] == round(np.std([1, 0.5], ddof=1), 4)
    assert report["per_seed"] == {"3": {"test_seen": {"auroc": 1.0, "macro_f1": 1.0}},
                                  "4": {"test_seen": {"auroc": 0.5, "macro_f1": 0.5}}}
    assert report["vs_true_label"]["test_seen"]["n"] == 5  # every row with a known truth counts
    assert "val" not in report  # splits that are not there are not invented


def test_single_class_split_gives_undefined_auroc_not_nan():
    runs = [{"test_unseen": probs_for([0.2, 0.7])}]
    report = summarize(runs, {"test_unseen": {"labels": np.array([1, 1]), "true_labels": np.array([1, 1])}}, 1, [0])
    assert report["test_unseen"]["auroc"] is None and report["test_unseen"]["accuracy"] == 0.5
    json.dumps(report, allow_nan=False)


def test_contrast_is_beyond_noise_only_when_the_gap_exceeds_twice_the_combined_std():
    a = {"auroc": 0.90, "auroc_std": 0.01}
    assert contrast(a, {"auroc": 0.80, "auroc_std": 0.02}, "auroc") == {
        "diff": 0.1, "seed_noise": round(2 * np.hypot(0.01, 0.02), 4), "beyond_noise": True}
    assert not contrast(a, {"auroc": 0.88, "auroc_std": 0.02}, "auroc")["beyond_noise"]
    assert contrast(a, {"auroc": None, "auroc_std": None}, "auroc") is None


def _write(folder, name, val, seen, unseen, std=0.01):
    split = lambda v: {k: v for k in ("auroc", "macro_f1", "accuracy")} | {  # noqa: E731
        f"{k}_std": std for k in ("auroc", "macro_f1", "accuracy")}
    (folder / f"{name}.json").write_text(json.dumps({"val": split(val), "test_seen": split(seen),
                                                     "test_unseen": split(unseen)}))


def test_compare_picks_on_validation_and_reports_against_seed_noise(tmp_path):
    _write(tmp_path, "text_expert", 0.80, 0.78, 0.70)
    _write(tmp_path, "vision_expert", 0.70, 0.79, 0.60)  # better on test, worse on val: not the best expert
    _write(tmp_path, "fusion_concat", 0.90, 0.88, 0.75)
    _write(tmp_path, "fusion_late", 0.85, 0.87, 0.74)
    result = compare(tmp_path, ["text", "vision"], ["concat", "late"])
    assert result["best_expert"] == "text_expert" and result["best_fusion"] == "fusion_concat"
    assert result["fusion_minus_best_expert"]["test_seen"]["auroc"]["diff"] == 0.1
    assert result["fusion_minus_best_expert"]["test_seen"]["auroc"]["beyond_noise"]
    assert not result["best_fusion_minus_other_fusions"]["fusion_late"]["test_seen"]["auroc"]["beyond_noise"]
    table = format_table(result)
    assert "0.880 ± 0.010" in table and "beyond seed noise" in table and "within seed noise" in table
    full = format_table(result, markdown=True, full=True)
    assert "| 0.8800 ± 0.0100 |" in full and "test_unseen accuracy" in full


def test_compare_names_a_missing_metrics_file(tmp_path):
    from core.errors import PipelineError

    with pytest.raises(PipelineError, match="fusion_gated.json not found"):
        compare(tmp_path, [], ["gated"])


def test_paired_bootstrap_finds_a_real_gain_and_no_gain_between_equals():
    from Step_5.studies.compare import paired_bootstrap

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    good = labels + rng.normal(0, 0.6, 400)  # ranks well
    poor = labels + rng.normal(0, 2.0, 400)  # ranks worse
    gain = paired_bootstrap(labels, good, poor, resamples=300)
    assert gain["auroc_gain"] > 0.1 and gain["ci95"][0] > 0 and gain["share_not_better"] == 0
    same = paired_bootstrap(np.append(labels, -1), np.append(good, 9.0), np.append(good, -9.0), resamples=50)
    assert same["auroc_gain"] == 0 and same["ci95"] == [0, 0]  # unlabelled rows (-1) are left out
