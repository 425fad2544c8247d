"""Every model's scores on the evaluated splits: calibration, operating points, paired AUROC tests, slices and
ROC/PR curves with bootstrap bands."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from Step_6.bootstrap import paired_auroc_difference, rates_with_intervals, resamples
from Step_6.calibration import calibration_measures, fit_temperature, fit_temperature_bias, reliability, softmax
from Step_6.config import EvaluateConfig
from Step_6.inputs import EvaluationInputs
from Step_6.slices import FAMILIES, highlights, slice_quality
from Step_6.thresholds import choose_operating_points, max_positive_f1


@dataclass
class CalibratedModels:
    """Per model (comparison name): its calibration, reliability rows, operating points, calibrated probabilities
    per split (every row) and positive-class scores per split (labelled rows)."""

    calibration: dict = field(default_factory=dict)
    reliability: dict = field(default_factory=dict)
    operating_points: dict = field(default_factory=dict)
    probs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def calibrate_models(data: EvaluationInputs, cfg: EvaluateConfig) -> CalibratedModels:
    """Calibrate every model on evaluate.fit_on (val, val_unseen) and choose its operating points on the calibrated
    scores there."""
    out = CalibratedModels()
    for name, per_split in data.logits.items():
        c = calibrate(per_split, data.labels, cfg.ece_bins, cfg.calibration, fitted_on(cfg, data.splits),
                      cfg.calibration_fit)
        out.reliability[name] = c.pop("reliability")
        out.calibration[name] = c
        out.probs[name] = {s: softmax(z, c["temperature"], c["bias"]) for s, z in per_split.items()}
        out.scores[name] = {s: out.probs[name][s][data.keep[s], data.positive] for s in data.splits}
        out.operating_points[name] = operating_points(out.scores[name], data.y, cfg, fitted_on(cfg, data.splits))
    return out


def fitted_on(cfg: EvaluateConfig, splits: list[str]) -> list[str]:
    """The splits of evaluate.fit_on that the data holds."""
    return [s for s in cfg.fit_on if s in splits]


def calibrate(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray], bins: int, method: str,
              fit_on: Sequence[str] = ("val",), fit: str = "pooled") -> dict:
    """Temperature (and with 'temperature_bias' a per-class bias) fitted on the labelled rows of the `fit_on`
    splits, pooled or (fit 'worst_split') for the split it serves worst; measures and reliability rows before and
    after, per split (labelled rows)."""
    keep = {s: labels[s] >= 0 for s in labels}
    z_val = np.concatenate([logits[s][keep[s]] for s in fit_on])
    y_val = np.concatenate([labels[s][keep[s]] for s in fit_on])
    sizes = np.cumsum([0] + [int(keep[s].sum()) for s in fit_on])
    groups = [np.arange(a, b) for a, b in zip(sizes[:-1], sizes[1:]) if b > a] if fit == "worst_split" else None
    if method == "temperature_bias":
        temperature, bias = fit_temperature_bias(z_val, y_val)
    else:
        temperature, bias = fit_temperature(z_val, y_val, groups=groups), [0.0] * z_val.shape[1]
    out = {"method": method, "fit": fit, "temperature": temperature, "bias": bias, "fitted_on": list(fit_on),
           "splits": {}, "reliability": {}}
    for split, z in logits.items():
        y = labels[split][keep[split]]
        before, after = softmax(z[keep[split]]), softmax(z[keep[split]], temperature, bias)
        out["splits"][split] = {"before": calibration_measures(before, y, bins),
                                "after": calibration_measures(after, y, bins)}
        out["reliability"][split] = {"before": reliability(before, y, bins), "after": reliability(after, y, bins)}
    return out


def operating_points(scores: dict[str, np.ndarray], y: dict[str, np.ndarray], cfg: EvaluateConfig,
                     fit_on: Sequence[str] = ("val",)) -> dict:
    """Thresholds chosen on the `fit_on` splits pooled; rates with intervals on every split."""
    points = choose_operating_points(np.concatenate([y[s] for s in fit_on]),
                                     np.concatenate([scores[s] for s in fit_on]), cfg.min_precision, cfg.min_recall)
    if cfg.unseen_point and len(np.unique(y.get("val_unseen", []))) == 2:  # new material: its own threshold
        points["max_f1_unseen"] = {"threshold": max_positive_f1(y["val_unseen"], scores["val_unseen"]),
                                   "reached_on_val": True}
    for point in points.values():
        for split in scores:
            point[split] = rates_with_intervals(y[split], scores[split], point["threshold"], cfg.bootstrap, cfg.seed)
    return points


def paired_tests(scores: dict[str, dict[str, np.ndarray]], y: dict[str, np.ndarray], best_expert: str,
                 best_fusion: str, cfg: EvaluateConfig) -> dict:
    """AUROC differences on the same resamples: best fusion vs best expert, and vs every other fusion."""
    others = [n for n in scores if n.startswith("fusion_") and n != best_fusion]
    out = {}
    for other in [best_expert] + others:
        out[f"{best_fusion}_vs_{other}"] = {s: paired_auroc_difference(y[s], scores[best_fusion][s], scores[other][s],
                                                                        cfg.bootstrap, cfg.seed) for s in y}
    return out


def slice_reports(data: EvaluationInputs, models: CalibratedModels, values: dict[str, list[dict]],
                  cfg: EvaluateConfig) -> tuple[dict, dict]:
    """Per model and split: quality per slice family at the max-F1 threshold, and the highlights among them."""
    slices: dict = {}
    highlighted: dict = {}
    for name in data.logits:
        threshold = models.operating_points[name]["max_f1"]["threshold"]
        for s in data.splits:
            kept_values = [v for v, k in zip(values[s], data.keep[s]) if k]
            per_family = {f: slice_quality(data.y[s], models.scores[name][s], threshold, [v[f] for v in kept_values],
                                           cfg.bootstrap, cfg.seed) for f in FAMILIES}
            slices.setdefault(name, {})[s] = per_family
            highlighted.setdefault(name, {})[s] = highlights(per_family, cfg.slice_min_size)
    return slices, highlighted


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
