"""Stage `crossval`: grouped k-fold cross-validation of expert heads and fusion heads on the cached embeddings.

The labelled memes of `crossval.splits` (default train + val) are pooled and cut into k folds by a group column
(`crossval.group_by`): every group lies in one fold, so no model ever trains on a group it is scored on. With k
equal to the number of groups this is leave-one-group-out. Fold f is held out; fold f + 1 (mod k) is held out
too and decides early stopping; the other k - 2 folds train. Each fold trains, from scratch on the frozen
features, one head per expert named in `crossval.models` (the expert's own head size and training section) and
each fusion method named there (the `fusion` section, over `crossval.modalities`), and scores it on its
held-out fold and on test_seen and test_unseen. The tabular expert learns its features from labels, so inside
every fold it is retrained first (from the MFM-pretrained encoder when tabular_expert.pretrained, as in its
stage) on that fold's training rows only, and its features for every row come from that fold's expert; so is
the temporal expert.
Fine-tuned or DACT text / vision features learned from the train split's labels and are refused.

Writes metrics/crossval.json (per model: mean and std over the folds of AUROC, AUPRC, macro-F1 and accuracy on
the held-out folds, test_seen and test_unseen) and reports/crossval.json (the folds: groups, sizes, and every
fold's metrics).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from core.cli import run_cli
from core.errors import PipelineError
from core.files import write_json
from core.params import section
from core.progress import progress
from core.seed import pick_device, seed_everything
from Step_3.reader import ShardReader
from Step_4.config import TrainConfig
from Step_4.context import ExpertContext, FoldTrainer
from Step_4.engine import classification, fit, labelled_only, predict
from Step_4.expert import MLPHead
from Step_4.features.tensors import extract, resident, tensor_batches
from Step_4.registry import expert_kind
from Step_4.scores import split_metrics
from Step_5.config import CrossvalConfig, FusionConfig
from Step_5.data import dropout_batches, load_fusion_split
from Step_5.models import FUSIONS, FusionDims, create_fusion, fusion_params
from Step_5.studies.folds import (
    METRICS,
    concat_rows,
    fold_roles,
    group_of,
    grouped_folds,
    rows,
    subset,
    summarize_folds,
)


class HeadOn(torch.nn.Module):
    """An expert's head on its modality's cached features in a fusion batch."""

    def __init__(self, modality: str, head: torch.nn.Module):
        super().__init__()
        self.modality, self.head = modality, head

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(batch[self.modality])



def build_model(name: str, dims: FusionDims, fusion: FusionConfig, params_file: str) -> tuple[torch.nn.Module, TrainConfig]:
    """A fresh model for `name` (an expert modality or a fusion method) and its training section."""
    if name in FUSIONS:
        return create_fusion(name, dims, fusion_params(name, getattr(fusion, name))), fusion.train
    kind = expert_kind(name)
    cfg = section(kind.config, kind.section, params_file)
    head = MLPHead(in_dim=dims.inputs[name], hidden=cfg.head_hidden, n_classes=dims.n_classes, dropout=cfg.dropout,
                   input_dropout=getattr(cfg, "input_dropout", 0.0))
    return HeadOn(name, head), cfg.train


def train_and_score(model: torch.nn.Module, t: TrainConfig, parts: dict[str, dict], scored: dict[str, dict],
                    meta: dict, device: str, modality_dropout: float, feature_dropout: float = 0.0,
                    features: tuple[str, ...] = ()) -> dict:
    """Train on parts['train'], stop on parts['stop']; metrics on each scored set."""
    train, stop, positive = resident(parts["train"], device), resident(parts["stop"], device), meta["positive_index"]
    counts = torch.bincount(train["label"], minlength=len(meta["classes"])).tolist()  # this fold's class weights
    objective = classification(t, counts, lambda: tensor_batches(stop, 1024, shuffle=False),
                               positive=positive, device=device, desc="crossval")
    fit(model, objective, cfg=t, device=device, live=None, desc="crossval",
        train_batches=lambda e: dropout_batches(train, t.batch_size, modality_dropout, t.seed, e, feature_dropout,
                                                features),
        steps_per_epoch=math.ceil(len(train["label"]) / t.batch_size))
    out = {}
    for name, data in scored.items():
        labels, probs = predict(model, tensor_batches(data, 1024, shuffle=False), device)
        found = split_metrics(labels, probs, positive)
        out[name] = {k: found[k] for k in METRICS} if found else None
    return out


def cross_validate(pooled: dict, tests: dict[str, dict], folds: np.ndarray, cfg: CrossvalConfig, fusion: FusionConfig,
                   meta: dict, params_file: str, device: str, refits: list | None = None) -> dict[str, list[dict]]:
    """{model: [one dict of metrics per scored set, per fold]} over every fold. Each of `refits` (PerFold)
    retrains its modality's expert per fold and puts that fold's features into (pooled, tests)."""
    dims = FusionDims(inputs={m: pooled[m].shape[1] for m in cfg.modalities}, n_classes=len(meta["classes"]))
    results: dict[str, list[dict]] = {name: [] for name in cfg.models}
    with progress(total=cfg.folds * len(cfg.models), desc="crossval", unit="model") as bar:
        for fold in range(cfg.folds):
            roles = fold_roles(folds, fold, cfg.folds)
            fold_pooled, fold_tests = pooled, tests
            for refit in refits or []:
                fold_pooled, fold_tests = refit(roles, cfg.seed * 1000 + fold, fold_pooled, fold_tests)
            parts = {role: rows(fold_pooled, index) for role, index in roles.items()}
            for name in cfg.models:
                seed_everything(cfg.seed * 1000 + fold)
                model, t = build_model(name, dims, fusion, params_file)
                t = t.for_seed(cfg.seed * 1000 + fold)
                is_fusion = name in FUSIONS
                scored = {"held_out": parts["held_out"], **fold_tests}
                results[name].append(train_and_score(
                    model, t, parts, scored, meta, device, fusion.modality_dropout if is_fusion else 0.0,
                    fusion.feature_dropout if is_fusion else 0.0, tuple(cfg.modalities) if is_fusion else ()))
                bar.update(1)
    return results


class PerFold:
    """Retrains one label-trained expert on a fold's training rows (early stopping on its stop fold) and gives every
    pooled and test row that fold's features of it, so no fold scores rows those features learned from. How the
    expert loads its rows and trains is its plugin's `fold_trainer` (Step_4.context.FoldTrainer)."""

    def __init__(self, modality: str, trainer: FoldTrainer, cfg: CrossvalConfig, pooled: dict, tests: dict,
                 device: str):
        self.modality, self.trainer, self.device = modality, trainer, device
        self.pool = concat_rows([labelled_only(trainer.load(split)) for split in cfg.splits])
        if self.pool["id"] != pooled["id"]:
            raise PipelineError(f"the {modality} rows and the cached embeddings list different memes; rerun dvc repro")
        self.tests = {s: trainer.load(s) for s in tests}
        self.pooled, self.test_features = pooled, tests

    def __call__(self, roles: dict[str, np.ndarray], seed: int, pooled: dict | None = None,
                 tests: dict | None = None) -> tuple[dict, dict]:
        """(pooled, tests) with this modality's features from an expert trained on the fold's rows only."""
        pooled = self.pooled if pooled is None else pooled
        tests = self.test_features if tests is None else tests
        torch.manual_seed(seed)
        expert = self.trainer.fit({"train": subset(self.pool, roles["train"]),
                                   "val": subset(self.pool, roles["stop"])}, seed)
        pooled = {**pooled, self.modality: self.features(expert, self.pool)}
        tests = {s: {**d, self.modality: self.features(expert, self.tests[s])} for s, d in tests.items()}
        return pooled, tests

    def features(self, expert, data: dict) -> torch.Tensor:
        """The expert's features of every row, in the rows' own order (extract sorts by id)."""
        found = extract(expert, tensor_batches(data, 1024, shuffle=False), self.device,
                        desc=f"{self.modality} features")
        order = {sample_id: i for i, sample_id in enumerate(found["ids"])}
        return found["features"][[order[i] for i in data["id"]]]


def features_learn_labels(plugin, cfg) -> bool:
    """The plugin's own answer (`features_learn_labels(cfg)`); without that hook, the features are label-free only
    from a frozen encoder without adaptive depth."""
    hook = getattr(plugin, "features_learn_labels", None)
    if hook is not None:
        return bool(hook(cfg))
    return getattr(cfg, "mode", None) != "frozen" or getattr(cfg, "adaptive", "none") != "none"


def fold_plugins(cfg: CrossvalConfig, params_file: str) -> dict[str, tuple]:
    """{modality: (plugin, its params section)} of crossval.modalities; refuses, before any data is read, a modality
    whose cached features learned from labels and whose plugin cannot retrain it inside a fold (fold_trainer)."""
    kinds = [expert_kind(modality) for modality in cfg.modalities]
    plugins = {kind.name: (kind.load(), section(kind.config, kind.section, params_file)) for kind in kinds}
    refused = [m for m, (plugin, c) in plugins.items()
               if not hasattr(plugin, "fold_trainer") and features_learn_labels(plugin, c)]
    if refused:
        raise PipelineError(f"crossval.modalities: the cached features of {refused} were learned from the train "
                            "split's labels (a fine-tuned or DACT encoder), so every fold would score rows its features "
                            "saw. Cross-validate frozen encoders (and experts whose plugin retrains them per fold) only")
    return plugins


def fold_refits(reader: ShardReader, cfg: CrossvalConfig, pooled: dict, tests: dict, plugins: dict[str, tuple],
                mfm_dir: Path | None, device: str) -> list[PerFold]:
    """A PerFold for every modality whose plugin retrains it inside a fold (fold_trainer)."""
    ctx = ExpertContext(reader=reader, device=device, mfm_dir=mfm_dir)
    return [PerFold(m, plugin.fold_trainer(c, ctx), cfg, pooled, tests, device)
            for m, (plugin, c) in plugins.items() if hasattr(plugin, "fold_trainer")]


def load_pooled(reader: ShardReader, embeddings: Path, cfg: CrossvalConfig) -> tuple:
    """(pooled labelled rows of cfg.splits, their groups, {test split: its rows})."""
    n_classes = len(reader.meta["classes"])
    parts, groups = [], []
    for split in cfg.splits:
        samples = sorted(reader.samples(split, decode_images=False), key=lambda s: s["id"])
        data = load_fusion_split(embeddings, split, cfg.modalities, [s["id"] for s in samples], n_classes)
        parts.append(labelled_only(data))
        groups += [group_of(s["meta"], cfg.group_by) for s in samples if s["meta"]["label"] >= 0]
    pooled = concat_rows(parts)
    tests = {}
    for split in ("test_seen", "test_unseen"):
        if reader.meta["counts"].get(split):
            ids = sorted(s["id"] for s in reader.samples(split, decode_images=False))
            data = load_fusion_split(embeddings, split, cfg.modalities, ids, n_classes)
            tests[split] = {k: v for k, v in data.items() if torch.is_tensor(v)}
    return pooled, groups, tests


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.studies.crossval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (sections crossval, fusion, <m>_expert)")
    parser.add_argument("--shards", default="data/shards", help="shard folder from Step_3 (ids, labels, groups)")
    parser.add_argument("--embeddings", default="data/embeddings", help="cached expert embeddings from Step_4")
    parser.add_argument("--mfm", default=None, help="MFM-pretrained tabular encoder (models/tabular_mfm): the start of "
                        "the tabular expert retrained in every fold when tabular_expert.pretrained")
    parser.add_argument("--metrics", default="metrics/crossval.json", help="output: mean and std over the folds")
    parser.add_argument("--report", default="reports/crossval.json", help="output: the folds and every fold's metrics")
    args = parser.parse_args()
    cfg = section(CrossvalConfig, "crossval", args.params)
    fusion = section(FusionConfig, "fusion", args.params)
    if "late" in cfg.models:
        raise PipelineError("crossval.models: 'late' averages the experts' cached logits, whose heads trained on "
                            "every pooled row; cross-validating it would score rows it has seen. Leave it out")
    unknown = [m for m in cfg.models if m not in FUSIONS and m not in cfg.modalities]
    if unknown:
        raise PipelineError(f"crossval.models: {unknown} are neither fusion methods ({', '.join(FUSIONS)}) nor "
                            f"modalities of crossval.modalities ({', '.join(cfg.modalities)})")
    plugins = fold_plugins(cfg, args.params)
    reader = ShardReader(args.shards)
    pooled, groups, tests = load_pooled(reader, Path(args.embeddings), cfg)
    folds = grouped_folds(groups, cfg.folds, cfg.seed)
    device = pick_device(cfg.device)
    refits = fold_refits(reader, cfg, pooled, tests, plugins, Path(args.mfm) if args.mfm else None, device)
    results = cross_validate(pooled, tests, folds, cfg, fusion, reader.meta, args.params, device, refits)
    summary = summarize_folds(results)
    write_json(args.metrics, {"folds": cfg.folds, "group_by": cfg.group_by, "models": summary})
    named = [g for g in groups if g is not None]
    write_json(args.report, {
        "folds": cfg.folds, "group_by": cfg.group_by, "splits": cfg.splits, "rows": len(groups),
        "groups": len(set(named)) + (len(groups) - len(named)), "rows_without_group": len(groups) - len(named),
        "fold_rows": np.bincount(folds, minlength=cfg.folds).tolist(),
        "fold_groups": [sorted({g for g, f in zip(groups, folds) if f == k and g is not None}) for k in range(cfg.folds)],
        "per_fold": results})
    scored = {m: v["held_out"] for m, v in summary.items() if "auroc" in v.get("held_out", {})}
    if scored:
        best = max(scored, key=lambda m: scored[m]["auroc"])
        print(f"crossval: {cfg.folds} folds by {cfg.group_by}; best held-out AUROC {best} "
              f"{scored[best]['auroc']} ± {scored[best]['auroc_std']}")
    else:
        print(f"crossval: {cfg.folds} folds by {cfg.group_by}; no held-out fold had both classes (no AUROC)")


if __name__ == "__main__":
    run_cli(main)
