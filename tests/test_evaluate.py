"""Step 6 building blocks: calibration measures on hand-checked numbers, temperature fitting, operating
points, corruption determinism, bootstrap interval coverage."""
import io
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from Step_6.bootstrap import auroc_with_interval, paired_auroc_difference, rates_with_intervals
from Step_6.calibration import brier, ece, fit_temperature, fit_temperature_bias, nll, reliability, softmax
from Step_6.config import IMAGE_CORRUPTIONS, EvaluateConfig, RobustnessConfig
from Step_6.corruptions import CorruptedImages, corrupt_text, rng_for
from Step_6.slices import highlights, length_bin
from Step_6.thresholds import choose_operating_points


def test_ece_brier_nll_on_a_hand_checked_example():
    # four memes at confidence 0.95 (3 right, 1 wrong), two at 0.55 (1 right, 1 wrong)
    probs = np.array([[0.05, 0.95]] * 4 + [[0.45, 0.55]] * 2)
    labels = np.array([1, 1, 1, 0, 1, 0])
    # bins: |0.75 - 0.95| * 4/6 + |0.5 - 0.55| * 2/6 = 0.1333 + 0.0167
    assert ece(probs, labels, bins=15) == pytest.approx(0.15)
    rows = reliability(probs, labels, bins=15)
    assert [(r["count"], round(r["accuracy"], 3)) for r in rows] == [(2, 0.5), (4, 0.75)]
    # one adaptive bin: |mean accuracy - mean confidence| = |4/6 - 0.8167|
    assert ece(probs, labels, bins=1, adaptive=True) == pytest.approx(abs(4 / 6 - (0.95 * 4 + 0.55 * 2) / 6))
    # Brier: right at .95 -> 2 * .05^2; wrong at .95 -> 2 * .95^2; right/wrong at .55 -> 2 * .45^2 / 2 * .55^2
    expected = (3 * 2 * 0.05 ** 2 + 2 * 0.95 ** 2 + 2 * 0.45 ** 2 + 2 * 0.55 ** 2) / 6
    assert brier(probs, labels) == pytest.approx(expected)
    assert nll(probs, labels) == pytest.approx(-(3 * math.log(0.95) + math.log(0.05) + math.log(0.55)
                                                 + math.log(0.45)) / 6)


def test_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-z))).astype(int)  # calibrated at logit z
    logits = np.stack([np.zeros_like(z), 3 * z], axis=1)  # three times too sharp
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(3.0, rel=0.08)
    before, after = softmax(logits), softmax(logits, temperature)
    assert ece(after, labels) < 0.02 < ece(before, labels)
    assert nll(after, labels) < nll(before, labels)


def test_worst_split_temperature_serves_the_split_the_pooled_fit_neglects():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.5, 12000)
    labels = (rng.random(12000) < 1 / (1 + np.exp(-z))).astype(int)
    sharpness = np.where(np.arange(12000) < 10000, 1.0, 4.0)  # a large calibrated split, a small overconfident one
    logits = np.stack([np.zeros_like(z), sharpness * z], axis=1)
    groups = [np.arange(10000), np.arange(10000, 12000)]
    pooled, worst = fit_temperature(logits, labels), fit_temperature(logits, labels, groups=groups)
    assert pooled < 1.8 and worst > pooled  # the pooled fit follows the large split
    split_nll = lambda t: [nll(softmax(logits[g], t), labels[g]) for g in groups]  # noqa: E731
    assert max(split_nll(worst)) < max(split_nll(pooled)) - 0.01
    for t in (worst * 0.95, worst * 1.05):  # a minimum of the largest split NLL
        assert max(split_nll(t)) >= max(split_nll(worst)) - 1e-9


def test_worst_split_calibration_is_for_a_temperature_alone():
    with pytest.raises(ValueError, match="worst_split"):
        EvaluateConfig(calibration="temperature_bias", calibration_fit="worst_split")
    with pytest.raises(ValueError, match="calibration_fit"):
        EvaluateConfig(calibration_fit="median")


def test_temperature_and_bias_undo_a_scale_and_a_shift():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 1.5, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-z))).astype(int)
    logits = np.stack([np.zeros_like(z), 2 * z + 1.0], axis=1)  # twice too sharp and shifted toward class 1
    temperature, bias = fit_temperature_bias(logits, labels)
    assert temperature == pytest.approx(2.0, rel=0.08)
    assert bias[1] - bias[0] == pytest.approx(-0.5, abs=0.08)  # (2z + 1) / 2 - 0.5 = z
    with_bias = nll(softmax(logits, temperature, bias), labels)
    assert with_bias < nll(softmax(logits, fit_temperature(logits, labels)), labels) - 0.005


def test_operating_points_on_a_hand_checked_example():
    y = np.array([1, 1, 0, 1, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.1])
    points = choose_operating_points(y, scores, min_precision=0.9, min_recall=0.9)
    assert points["precision_90"] == {"threshold": 0.8, "reached_on_val": True}  # lowest cut with precision 1
    assert points["recall_90"] == {"threshold": 0.6, "reached_on_val": True}  # highest cut finding all 3
    assert points["max_f1"]["threshold"] == 0.6  # macro-F1 0.857 at 0.6 beats 0.844 at 0.8
    unreachable = choose_operating_points(np.array([0, 1, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1]), 0.99, 0.5)
    assert unreachable["precision_99"]["reached_on_val"] is False
    rates = rates_with_intervals(y, scores, 0.6, count=200, seed=0)
    assert rates["precision"] == 0.75 and rates["recall"] == 1.0 and rates["flag_rate"] == pytest.approx(4 / 7, abs=1e-4)
    nothing = rates_with_intervals(y, scores, 0.95, count=200, seed=0)
    assert nothing["precision"] is None and nothing["flag_rate"] == 0.0  # nothing flagged: precision undefined


def test_the_unseen_operating_point_maximises_hateful_f1_on_val_unseen_alone():
    from Step_6.config import EvaluateConfig
    from Step_6.scoring import operating_points
    from Step_6.thresholds import max_positive_f1

    y = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.1])
    assert max_positive_f1(y, scores) == 0.4  # F1 0.8 (4 of 4 caught, 6 flagged) beats 0.667 at 0.5
    seen_y, seen = np.array([1, 1, 0, 0]), np.array([0.95, 0.9, 0.2, 0.1])
    cfg = EvaluateConfig(bootstrap=100)
    points = operating_points({"val": seen, "val_unseen": scores}, {"val": seen_y, "val_unseen": y}, cfg, ["val"])
    assert points["max_f1_unseen"]["threshold"] == 0.4 and points["max_f1"]["threshold"] == 0.9
    assert points["max_f1_unseen"]["val_unseen"]["recall"] == 1.0
    off = EvaluateConfig(bootstrap=100, unseen_point=False)
    assert "max_f1_unseen" not in operating_points({"val": seen}, {"val": seen_y}, off, ["val"])


def test_bootstrap_intervals_cover_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered_rate, covered_auc, trials = 0, 0, 150
    true_auc = 0.5 * math.erfc(-1 / 2)  # P(N(1,1) > N(0,1)) = Phi(1 / sqrt 2)
    for trial in range(trials):
        y = (rng.random(300) < 0.3).astype(int)
        flagged_share = rates_with_intervals(y, np.ones(300), 0.5, count=400, seed=trial)  # precision = share of 1s
        lo, hi = flagged_share["precision_ci95"]
        covered_rate += lo <= 0.3 <= hi
        scores = rng.normal(y.astype(float), 1.0)
        lo, hi = auroc_with_interval(y, scores, count=400, seed=trial)["auroc_ci95"]
        covered_auc += lo <= true_auc <= hi
    assert 0.88 <= covered_rate / trials <= 0.99
    assert 0.88 <= covered_auc / trials <= 0.99


def test_paired_difference_is_zero_for_the_same_model_and_positive_for_a_better_one():
    rng = np.random.default_rng(2)
    y = (rng.random(400) < 0.4).astype(int)
    weak, strong = rng.normal(y * 0.5, 1.0), rng.normal(y * 2.0, 1.0)
    same = paired_auroc_difference(y, weak, weak, count=300, seed=0)
    assert same["diff"] == 0 and same["ci95"] == [0.0, 0.0]
    better = paired_auroc_difference(y, strong, weak, count=300, seed=0)
    assert better["ci95"][0] > 0 and better["share_not_better"] == 0.0


def meme_bytes() -> bytes:
    image = Image.new("RGB", (200, 160), (40, 90, 160))
    ImageDraw.Draw(image).text((20, 60), "WHEN THE CODE RUNS", fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_corruptions_are_deterministic_and_cached(tmp_path, monkeypatch):
    source, cfg = meme_bytes(), RobustnessConfig()
    first = {c: CorruptedImages(tmp_path / "a", cfg).get(source, c) for c in IMAGE_CORRUPTIONS}
    second = {c: CorruptedImages(tmp_path / "b", cfg).get(source, c) for c in IMAGE_CORRUPTIONS}
    assert first == second  # same seed and settings: the same bytes
    assert len(set(first.values())) == len(IMAGE_CORRUPTIONS) and source not in first.values()
    other_seed = CorruptedImages(tmp_path / "c", RobustnessConfig(seed=1)).get(source, "noise")
    assert other_seed != first["noise"]
    half = Image.open(io.BytesIO(first["downscale"]))
    assert half.size == (100, 80)
    # a second run reads the stored files and corrupts nothing
    monkeypatch.setattr("Step_6.corruptions.corrupt_image", lambda *a: pytest.fail("corrupted again"))
    assert CorruptedImages(tmp_path / "a", cfg).get(source, "blur") == first["blur"]
    text = "THEY ALWAYS SHOW UP LATE TO EVERYTHING"
    noisy = [corrupt_text(text, "ocr_noise", RobustnessConfig(char_confusion_rate=0.3), rng_for(0, "m-1", "ocr_noise"))
             for _ in range(2)]
    assert noisy[0] == noisy[1] != text and len(noisy[0]) == len(text)
    dropped = corrupt_text(text, "dropped_words", cfg, rng_for(0, "m-1", "dropped_words"))
    assert set(dropped.split()) < set(text.split()) and dropped


def test_slice_helpers():
    assert [length_bin(n, [6, 10]) for n in (0, 6, 7, 10, 11)] == ["<=6", "<=6", "7-10", "7-10", ">10"]
    per_family = {"intent": {"a": {"n": 50, "auroc": 0.7}, "b": {"n": 40, "auroc": 0.55}, "c": {"n": 3, "auroc": 0.1}}}
    h = highlights(per_family, min_size=20)
    assert h["worst"]["value"] == "b" and h["smallest"]["value"] == "c"  # the tiny slice is never the worst
