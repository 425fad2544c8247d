"""Tabular schema fitted on the train split (fit_schema), and TabularSchema, which turns a row into model inputs.

Numeric fields: optional log1p for skewed non-negative fields, standardised with train mean/std,
missing or non-numeric values imputed with 0 (the train mean) plus a missing indicator.
Categorical fields: train vocabulary; index 0 = missing, 1 = unseen value.
"""
from __future__ import annotations

import math

import numpy as np

MISSING, UNSEEN = 0, 1


def as_number(value) -> float | None:
    """A finite float, or None for missing / NaN / non-numeric values."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def as_category(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def fit_schema(numeric: list[str], categorical: list[str], train_rows: list[dict]) -> dict:
    """Statistics from train rows' `tabular` dicts only (no leakage from val/test)."""
    num_specs = []
    for name in numeric:
        values = np.array([v for r in train_rows if (v := as_number(r["tabular"].get(name))) is not None], dtype=np.float64)
        log = bool(len(values) and values.min() >= 0 and _skew(values) > 2.0)
        if log:
            values = np.log1p(values)
        mean = float(values.mean()) if len(values) else 0.0
        std = float(values.std()) if len(values) > 1 else 1.0
        num_specs.append({"name": name, "log1p": log, "mean": round(mean, 6), "std": round(std if std > 1e-8 else 1.0, 6),
                          "missing_rate": round(1 - len(values) / max(1, len(train_rows)), 4)})
    cat_specs = []
    for name in categorical:
        seen = sorted({c for r in train_rows if (c := as_category(r["tabular"].get(name))) is not None})
        cat_specs.append({"name": name, "vocab": seen, "cardinality": len(seen) + 2})
    return {"numeric": num_specs, "categorical": cat_specs}


def _skew(values: np.ndarray) -> float:
    std = values.std()
    return float(((values - values.mean()) ** 3).mean() / std**3) if std > 0 else 0.0


class TabularSchema:
    """A fitted schema's fields: row dict → (numeric float32[n], missing float32[n], categorical int64[m])."""

    def __init__(self, schema: dict):
        self.numeric = schema["numeric"]
        self.categorical = schema["categorical"]
        self.index = [{v: i + 2 for i, v in enumerate(spec["vocab"])} for spec in self.categorical]

    @property
    def n_numeric(self) -> int:
        return len(self.numeric)

    @property
    def cardinalities(self) -> list[int]:
        return [spec["cardinality"] for spec in self.categorical]

    def encode(self, row: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x_num = np.zeros(len(self.numeric), dtype=np.float32)
        missing = np.zeros(len(self.numeric), dtype=np.float32)
        for j, spec in enumerate(self.numeric):
            value = as_number(row.get(spec["name"]))
            if value is None or (spec["log1p"] and value < 0):
                missing[j] = 1.0
                continue
            if spec["log1p"]:
                value = math.log1p(value)
            x_num[j] = (value - spec["mean"]) / spec["std"]
        x_cat = np.zeros(len(self.categorical), dtype=np.int64)
        for j, spec in enumerate(self.categorical):
            value = as_category(row.get(spec["name"]))
            x_cat[j] = MISSING if value is None else self.index[j].get(value, UNSEEN)
        return x_num, missing, x_cat

    def is_empty(self, row: dict) -> bool:
        """True when the row has no usable value at all (the tabular modality is missing)."""
        return all(as_number(row.get(s["name"])) is None for s in self.numeric) and \
            all(as_category(row.get(s["name"])) is None for s in self.categorical)


