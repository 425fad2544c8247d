"""Training of the DACT text expert (`text_expert.adaptive: dact`), once per seed:
- frozen (default): every layer's pooled state is computed once (cached by text content in the feature
  cache) and only the units train on those states;
- finetune: the top `trainable_layers` layers train with the units from the shards.
Then the depth curve of the same run: the DACT point (macro-F1 / AUROC against layers used), the same units
forced to full depth, and when `dact.truncation_baselines` a head trained on the first k layers' pooled
state for every k.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from core.errors import PipelineError
from core.progress import progress
from core.seed import seed_everything
from Step_3.reader import class_counts
from Step_3.splits import EVALUATED
from Step_4.config import TrainConfig
from Step_4.engine import FitResult, classification, fit, labelled_only, to_device
from Step_4.expert import Expert, MLPHead, make_expert
from Step_4.features.batches import pooled_batches
from Step_4.features.cache import FeatureCache, fingerprint
from Step_4.features.passes import CacheGaps, embed_splits, loader_facts
from Step_4.features.tensors import resident, tensor_batches
from Step_4.hf_layers import find_layers
from Step_4.metrics import classification_metrics
from Step_4.recipes import fit_head, over_seeds, train_finetune
from Step_4.text.config import TextExpertConfig
from Step_4.text.dact import DactOutput, DactUnits, dact_over_states
from Step_4.text.dact_encoder import LOG_FLOOR, DactTextEncoder


class UnitsOnStates(nn.Module):
    """The units over precomputed pooled states: what trains in frozen mode (batch 'features': (B, N, D))."""

    def __init__(self, units: DactUnits, halting: str):
        super().__init__()
        self.units, self.halting = units, halting
        self.last: DactOutput | None = None

    def forward(self, batch: dict) -> torch.Tensor:
        self.last = dact_over_states(self.units, batch["features"], "none" if self.training else self.halting)
        return self.last.probs.clamp(min=LOG_FLOOR).log()

    def auxiliary_loss(self) -> torch.Tensor:
        return self.units.lam * self.last.ponder.mean()


class Probe(nn.Module):
    """A head on one layer's pooled state: the fixed-truncation baseline."""

    def __init__(self, head: MLPHead, layer: int):
        super().__init__()
        self.head, self.modality = head, f"text layer {layer}"

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(batch["features"])


def layer_states(encoder: DactTextEncoder, cfg: TextExpertConfig, ctx, cache: FeatureCache | None = None) -> dict:
    """{split: ids, states (N, layers, D), labels, true_labels}: every layer's pooled state, id-sorted. With a cache
    (frozen backbone) only texts not seen before run through the encoder, in one pass over the splits."""
    encoder.eval().to(ctx.device)
    store = cache if cache is not None else MemoryStore()
    gaps = CacheGaps.find(encoder, ctx.reader, ctx.splits, store)
    if gaps.splits_to_encode():
        loader = pooled_batches(ctx.reader, {"text": encoder}, gaps.splits_to_encode(),
                                batch_size=cfg.embed_batch_size, num_workers=cfg.num_workers, device=ctx.device,
                                select=gaps.select(ctx.reader))
        with torch.no_grad():
            for split, batch in progress(loader, total=gaps.batches(cfg.embed_batch_size), desc="text layer states",
                                         unit="batch", leave=False):
                batch = to_device(batch, ctx.device)
                states = encoder.run(batch, halting="none", keep_states=True).states.float().cpu()
                store.add([gaps.key_of[split][i] for i in batch["id"]], states.flatten(1),
                          torch.ones(len(states), dtype=torch.bool))
    out = {}
    for split in ctx.splits:
        ids, keys, labels, truth = (list(c) for c in zip(*gaps.index[split]))
        flat, _ = store.get(keys)
        out[split] = {"ids": ids, "states": flat.view(len(ids), encoder.n_layers, encoder.pooled_dim),
                      "labels": torch.tensor(labels), "true_labels": torch.tensor(truth)}
    return out


class MemoryStore(dict):
    """A FeatureCache look-alike held in memory (a fine-tuned backbone's states are never reused)."""

    def add(self, keys, features, present) -> None:
        self.update(zip(keys, features))

    def get(self, keys):
        return torch.stack([self[k] for k in keys]), None


def states_cache(encoder: DactTextEncoder, ctx) -> FeatureCache | None:
    """The feature cache of the frozen backbone's per-layer states (its own file beside the plain features)."""
    if ctx.feature_cache is None:
        return None
    key = hashlib.sha256(f"per-layer-states:{fingerprint(encoder.text)}".encode()).hexdigest()[:24]
    return FeatureCache(ctx.feature_cache, key)


def fit_units(encoder: DactTextEncoder, states: dict, t: TrainConfig, lr: float, ctx, live) -> FitResult:
    """Train the units at learning rate `lr` on cached states (frozen backbone); early stopping on val by
    t.early_stop_metric."""
    model = UnitsOnStates(encoder.units, encoder.halting)
    train_set, val_set = (resident(labelled_only({"label": states[s]["labels"], "features": states[s]["states"]}),
                                   ctx.device) for s in ("train", "val"))
    t = dataclasses.replace(t, lr=lr)
    objective = classification(t, class_counts(ctx.meta), lambda: tensor_batches(val_set, 512, shuffle=False),
                               positive=ctx.meta["positive_index"], device=ctx.device, desc="text dact units")
    return fit(model, objective, cfg=t, device=ctx.device, live=live, desc="text dact units",
               train_batches=lambda e: tensor_batches(train_set, t.batch_size, shuffle=True, seed=t.seed, epoch=e),
               steps_per_epoch=math.ceil(len(train_set["label"]) / t.batch_size))


def train_dact(cfg: TextExpertConfig, ctx, build: Callable):
    """The DACT text expert once per seed, with its depth curve (see the module docstring)."""
    cfg = cfg.for_device(ctx.device)
    shared_states: dict = {}
    curves: list[dict] = []

    def run_one(seed: int):
        seed_everything(seed)
        expert = make_expert("text", build(cfg, ctx.meta), cfg, ctx.meta)
        live = ctx.live if seed == cfg.train.seeds[0] else None
        t = cfg.train.for_seed(seed)
        if cfg.mode == "finetune":
            data, result = train_finetune(expert, cfg, t, ctx, live, lr_of={"encoder.units.": cfg.dact.lr})
            states = layer_states(expert.encoder, cfg, ctx)
        else:
            expert.encoder.freeze(0)
            if not shared_states:  # a frozen backbone gives the same states whatever the seed
                cache = states_cache(expert.encoder, ctx)
                shared_states.update(layer_states(expert.encoder, cfg, ctx, cache))
                if cache is not None:
                    cache.save()
            states = shared_states
            seed_everything(seed)
            result = fit_units(expert.encoder, states, t, cfg.dact.lr, ctx, live)
            data = embed_splits(expert, cfg, ctx)
        curves.append(depth_curve(expert, data, states, t, ctx, truncation=cfg.dact.truncation_baselines))
        return expert, data, result

    trained = over_seeds(cfg.train.seeds, run_one)
    depth = summarize_curves(curves)
    trained.extra["depth"] = depth
    trained.extra["plots"] = depth_plots(depth)
    trained.extra["loader"] = loader_facts(cfg)
    return trained


# ---------------------------------------------------------------- the depth curve


def depth_curve(expert: Expert, data: dict, states: dict, t: TrainConfig, ctx, *, truncation: bool) -> dict:
    """{point: {split: {macro_f1, auroc, layers}}} for one seed: 'dact' (as it halts), 'dact_full_depth' and
    'truncated_k' (a head on layer k's pooled state)."""
    positive = ctx.meta["positive_index"]
    splits = [s for s in EVALUATED if s in data]
    for s in data:
        if data[s]["ids"] != states[s]["ids"]:
            raise PipelineError(f"depth curve: the {s} embeddings and layer states hold different samples")
    units = expert.encoder.units
    curve: dict = {"dact": {}, "dact_full_depth": {}}
    with torch.no_grad():
        units.eval()
        for s in splits:
            curve["dact"][s] = point(data[s]["labels"], torch.softmax(data[s]["logits"], -1), positive,
                                     data[s]["layers_used"].float().mean().item())
            full = dact_over_states(units.cpu(), states[s]["states"], "none")
            curve["dact_full_depth"][s] = point(states[s]["labels"], full.probs, positive, float(expert.encoder.n_layers))
    units.to(ctx.device)
    if truncation:
        for k in range(1, expert.encoder.n_layers + 1):
            seed_everything(t.seed)
            probe = Probe(MLPHead(in_dim=expert.encoder.pooled_dim, hidden=expert.head_config["hidden"],
                                  n_classes=expert.head_config["n_classes"], dropout=expert.head_config["dropout"]), k)
            layer = {s: {"features": states[s]["states"][:, k - 1], "labels": states[s]["labels"]} for s in states}
            scored, _ = fit_head(probe, layer, t, ctx, None)
            curve[f"truncated_{k}"] = {s: point(states[s]["labels"], torch.softmax(scored[s]["logits"], -1), positive,
                                                float(k)) for s in splits}
    return curve


def point(labels: torch.Tensor, probs: torch.Tensor, positive: int, layers: float) -> dict:
    labels = labels.numpy()
    keep = labels >= 0
    scores = classification_metrics(labels[keep], probs.numpy()[keep], positive)
    return {"layers": round(layers, 4), "macro_f1": scores["macro_f1"], "auroc": scores["auroc"]}


def summarize_curves(curves: list[dict]) -> dict:
    """Mean and std over seeds of every point's layers, macro-F1 and AUROC."""
    out: dict = {}
    for name, by_split in curves[0].items():
        for s in by_split:
            row = {}
            for key in ("layers", "macro_f1", "auroc"):
                values = np.array([c[name][s][key] for c in curves], dtype=np.float64)
                row[key] = round(float(values.mean()), 4)
                row[f"{key}_std"] = round(float(values.std(ddof=1)), 4) if len(values) > 1 else 0.0
            out.setdefault(name, {})[s] = row
    return out


def depth_plots(depth: dict, split: str = "test_seen") -> dict:
    """DVC plot rows (test_seen): the DACT point and the truncation curve, macro-F1 / AUROC against layers."""
    def row(name):
        r = depth[name][split]
        return {"model": name, "layers": r["layers"], "macro_f1": r["macro_f1"], "auroc": r["auroc"]}

    truncated = sorted((n for n in depth if n.startswith("truncated_")), key=lambda n: int(n.rsplit("_", 1)[1]))
    if split not in depth["dact"]:
        return {}
    return {"depth_dact.json": [row("dact"), row("dact_full_depth")],
            "depth_truncated.json": [row(n) for n in truncated]}


def full_depth_plots(trained, positive: int, split: str = "test_seen") -> dict:
    """The depth plot files of a text expert without adaptive depth: its one full-depth point on the truncation
    curve and no DACT point, so the plot exists (and `dvc plots diff` against a DACT run shows both)."""
    try:
        n_layers = len(find_layers(trained.expert.encoder.backbone, trained.expert.encoder.layer_path))
    except (PipelineError, AttributeError):
        return {}
    if split not in trained.data:
        return {}
    labels = trained.data[split]["labels"]
    points = [point(labels, torch.from_numpy(run[split]), positive, float(n_layers)) for run in trained.runs]
    mean = {k: round(float(np.mean([p[k] for p in points])), 4) for k in ("macro_f1", "auroc")}
    return {"depth_dact.json": [],
            "depth_truncated.json": [{"model": f"truncated_{n_layers}", "layers": float(n_layers), **mean}]}
