"""The best fusion's most confident mistakes, and the gate weights of the gated fusion (per slice value and beside
each mistake), computed on the experts' cached embeddings."""
from __future__ import annotations

import numpy as np
import torch

from Step_6.config import EvaluateConfig
from Step_6.inputs import EvaluationInputs
from Step_6.scored_models import ModelSet, gate_weights
from Step_6.slices import FAMILIES


def gates_and_mistakes(models: ModelSet, data: EvaluationInputs, probs: dict[str, dict[str, np.ndarray]],
                       values: dict[str, list[dict]], best_fusion: str, cfg: EvaluateConfig, device: str) -> dict:
    """The report's 'gates_model', 'gates_by_slice' and 'mistakes' (of `best_fusion`, from its calibrated
    probabilities `probs`)."""
    gated_name, gates = fusion_gates(models, data.experts, data.splits, device)
    gated_modalities = models.fusions[gated_name.removeprefix("fusion_")].info["modalities"] if gated_name else []
    return {"gates_model": gated_name,
            "gates_by_slice": gates_by_slice(gates, values, gated_modalities) if gates else {},
            "mistakes": {s: confident_mistakes(probs[best_fusion][s], data.labels[s], data.ids[s], data.samples[s],
                                               data.classes, data.positive, gates.get(s), gated_modalities,
                                               cfg.mistakes) for s in data.splits}}


def fusion_gates(models: ModelSet, experts: dict[str, dict[str, dict]], splits: list[str],
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
