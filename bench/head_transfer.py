"""Which expert heads transfer to unseen memes? Trains head variants on the cached frozen features and scores them
on every split, so a choice is made on val_unseen and reported on test_unseen (docs/results.md: heads that transfer).

Each variant is Step_4.expert.MLPHead (or a linear layer) trained like the expert stage trains its head: AdamW,
class-weighted cross-entropy, batches of 64, early stopping on val and val_unseen pooled (patience 8, at most 40
epochs); two seeds, their AUROC averaged. Variants: the previous default (hidden 256), a linear head, weight
decay 0.1, input dropout 0.5 (hidden 64 and linear), Gaussian feature noise (0.5 std), mixup (alpha 0.4), and
smaller + more dropout. Needs data/embeddings (dvc repro); a minute or two per modality on 2 cores.

    python -m bench.head_transfer                 # text and vision
    python -m bench.head_transfer --modalities text --seeds 0 1 2
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from Step_3.splits import EVALUATED, SELECTION
from Step_4.expert import MLPHead
from Step_4.features.tensors import load_embeddings

VARIANTS = {"hidden 256 (before)": {}, "linear": {"hidden": 0}, "linear, weight decay 0.1": {"hidden": 0, "wd": 0.1},
            "hidden 64, input dropout 0.5 (text default)": {"hidden": 64, "input_dropout": 0.5},
            "linear, input dropout 0.5": {"hidden": 0, "input_dropout": 0.5}, "feature noise 0.5": {"noise": 0.5},
            "mixup 0.4": {"mixup": 0.4}, "hidden 64, dropout 0.5, weight decay 0.1": {"hidden": 64, "dropout": 0.5,
                                                                                    "wd": 0.1}}


def make_head(dim: int, hidden: int = 256, dropout: float = 0.2, input_dropout: float = 0.0) -> nn.Module:
    if hidden:
        return MLPHead(in_dim=dim, hidden=hidden, n_classes=2, dropout=dropout, input_dropout=input_dropout)
    return nn.Sequential(nn.Dropout(input_dropout or dropout), nn.Linear(dim, 2))


def train_head(x: dict, y: dict, seed: int, wd: float = 0.01, noise: float = 0.0, mixup: float = 0.0,
               **shape) -> nn.Module:
    """One head, early-stopped on the selection splits pooled; returns it in eval mode."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = make_head(x["train"].shape[1], **shape)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=wd)
    counts = torch.bincount(y["train"], minlength=2).float()
    weight = counts.sum() / counts / 2
    stop_x, stop_y = torch.cat([x[s] for s in SELECTION]), torch.cat([y[s] for s in SELECTION])
    spread = x["train"].std(0)
    best, state, waited = -1.0, None, 0
    for _ in range(40):
        head.train()
        for idx in torch.randperm(len(y["train"])).split(64):
            xb, yb = x["train"][idx], y["train"][idx]
            if noise:
                xb = xb + noise * spread * torch.randn_like(xb)
            if mixup:
                lam, other = float(rng.beta(mixup, mixup)), torch.randperm(len(idx))
                out = head(lam * xb + (1 - lam) * xb[other])
                loss = lam * nn.functional.cross_entropy(out, yb, weight=weight) + \
                    (1 - lam) * nn.functional.cross_entropy(out, yb[other], weight=weight)
            else:
                loss = nn.functional.cross_entropy(head(xb), yb, weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            score = roc_auc_score(stop_y, head(stop_x).softmax(-1)[:, 1])
        if score > best:
            best, state, waited = score, {k: v.clone() for k, v in head.state_dict().items()}, 0
        elif (waited := waited + 1) >= 8:
            break
    head.load_state_dict(state)
    return head.eval()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.head_transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", default="data/embeddings", help="expert embedding cache root")
    parser.add_argument("--modalities", nargs="+", default=["text", "vision"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = parser.parse_args()
    torch.set_num_threads(2)
    splits = ("train", *EVALUATED)
    print(f"{'modality':<8} {'head':<44} " + " ".join(f"{s:>11}" for s in EVALUATED))
    for modality in args.modalities:
        data = {s: load_embeddings(f"{args.embeddings}/{modality}/{s}.safetensors") for s in splits}
        keep = {s: data[s]["labels"] >= 0 for s in splits}
        x = {s: data[s]["features"][keep[s]].float() for s in splits}
        y = {s: data[s]["labels"][keep[s]] for s in splits}
        for name, variant in VARIANTS.items():
            scores = {s: [] for s in EVALUATED}
            for seed in args.seeds:
                head = train_head(x, y, seed, **variant)
                with torch.no_grad():
                    for s in EVALUATED:
                        scores[s].append(roc_auc_score(y[s], head(x[s]).softmax(-1)[:, 1]))
            print(f"{modality:<8} {name:<44} " + " ".join(f"{np.mean(scores[s]):>11.3f}" for s in EVALUATED),
                  flush=True)


if __name__ == "__main__":
    main()
