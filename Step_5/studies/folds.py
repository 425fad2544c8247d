"""Grouped folds for cross-validation: whole groups per fold, the roles of each fold's rows, and the summary of
every fold's metrics."""
from __future__ import annotations

import numpy as np
import torch

from core.errors import PipelineError

METRICS = ("auroc", "auprc", "macro_f1", "accuracy")
SCORED = ("held_out", "test_seen", "test_unseen")


def group_of(sample: dict, path: str) -> str | None:
    """The value at `path` ('source', 'group', 'meta.frame', 'tabular.platform') of a shard sample's JSON."""
    node = sample
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return None if node is None or node == "" else str(node)


def grouped_folds(groups: list[str | None], k: int, seed: int) -> np.ndarray:
    """A fold number per row: whole groups per fold, folds balanced by rows (largest groups first, each to the
    smallest fold; ties broken by a seeded shuffle). A row without a group is a group of its own."""
    keys = [g if g is not None else f"\0row{i}" for i, g in enumerate(groups)]
    sizes: dict[str, int] = {}
    for key in keys:
        sizes[key] = sizes.get(key, 0) + 1
    if len(sizes) < k:
        raise PipelineError(f"crossval.folds={k} but only {len(sizes)} groups; lower folds (at most the number of "
                            "groups: that is leave-one-group-out) or pick another crossval.group_by")
    order = list(sizes)
    np.random.default_rng(seed).shuffle(order)
    order.sort(key=lambda g: -sizes[g])  # stable: the shuffle breaks ties
    fold_of, load = {}, [0] * k
    for group in order:
        fold = min(range(k), key=lambda f: (load[f], f))
        fold_of[group] = fold
        load[fold] += sizes[group]
    return np.array([fold_of[key] for key in keys])


def fold_roles(folds: np.ndarray, fold: int, k: int) -> dict[str, np.ndarray]:
    """Row indices of fold `fold`'s roles: held_out (scored), stop (early stopping) and train (the rest)."""
    stop = (fold + 1) % k
    return {"held_out": np.flatnonzero(folds == fold), "stop": np.flatnonzero(folds == stop),
            "train": np.flatnonzero((folds != fold) & (folds != stop))}


def rows(data: dict, index: np.ndarray) -> dict:
    """The given rows of the tensors of a dict (ids and other lists are left out)."""
    return {k: v for k, v in subset(data, index).items() if torch.is_tensor(v)}


def concat_rows(parts: list[dict]) -> dict:
    """Dicts of aligned tensors and lists, one after another."""
    return {k: (sum((p[k] for p in parts), []) if isinstance(parts[0][k], list) else torch.cat([p[k] for p in parts]))
            for k in parts[0]}


def subset(data: dict, index) -> dict:
    """The given rows of a dict of aligned tensors and lists."""
    index = [int(i) for i in index]
    return {k: ([v[i] for i in index] if isinstance(v, list) else v[torch.as_tensor(index, dtype=torch.long)])
            for k, v in data.items()}


def summarize_folds(results: dict[str, list[dict]]) -> dict:
    """Per model and scored set: {metric: mean, metric_std: sample std over folds}."""
    summary = {}
    for name, per_fold in results.items():
        summary[name] = {}
        for scored in SCORED:
            found = [f[scored] for f in per_fold if f.get(scored)]
            if not found:
                continue
            summary[name][scored] = {}
            for metric in METRICS:
                values = np.array([f[metric] for f in found], dtype=np.float64)
                values = values[np.isfinite(values)]  # e.g. AUROC of a fold that holds one class only
                if len(values):
                    summary[name][scored][metric] = round(float(values.mean()), 4)
                    summary[name][scored][f"{metric}_std"] = round(float(values.std(ddof=1)) if len(values) > 1
                                                                   else 0.0, 4)
    return summary
