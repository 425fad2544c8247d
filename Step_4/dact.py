"""Adaptive depth for the text expert: DACT (Differentiable Adaptive Computation Time, arXiv 2109.11745).

After every transformer layer n a unit reads the mean-pooled hidden state and gives class probabilities
y_n and a continue probability h_n. With p_0 = 1 and p_n = p_{n-1} h_n (the mass not yet assigned),

    a_n = a_{n-1} + p_{n-1} (1 - h_n) y_n,     h_N = 0 at the last layer, so a_N sums to 1.

The remaining layers can add at most p_n to any class, so once the top class of a_n leads every other by
at least p_n the answer cannot change and that meme stops: its later layers are never computed (the
batch shrinks). Training minimises NLL(a_N) + λ Σ_n p_n (the expected number of layers beyond the first).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.errors import PipelineError


def accumulate(a: torch.Tensor, p: torch.Tensor, y: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One DACT step: (a_n, p_n) from (a_{n-1}, p_{n-1}), y_n (B, C) and h_n (B,)."""
    return a + (p * (1 - h)).unsqueeze(-1) * y, p * h


def settled(a: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(B,) True where the remaining mass p cannot change the top class of a: top - second >= p."""
    top2 = a.topk(2, dim=-1).values
    return top2[:, 0] - top2[:, 1] >= p


@dataclass
class DactOutput:
    probs: torch.Tensor  # (B, C) accumulated class probabilities a
    features: torch.Tensor  # (B, D) the same accumulation over pooled hidden states: the text feature
    layers_used: torch.Tensor  # (B,) layers computed per meme
    ponder: torch.Tensor  # (B,) sum of p_n over the layers run: the depth penalty


class DactUnits(nn.Module):
    """Per-layer intermediate classifier and continue-probability head over the pooled hidden state."""

    def __init__(self, *, hidden: int, n_layers: int, n_classes: int, lam: float = 0.01):
        super().__init__()
        if lam < 0:
            raise ValueError(f"lambda must be >= 0, got {lam}")
        self.n_layers = n_layers
        self.classifiers = nn.ModuleList(nn.Linear(hidden, n_classes) for _ in range(n_layers))
        self.halting = nn.ModuleList(nn.Linear(hidden, 1) for _ in range(n_layers))
        # the lambda a model was trained with travels in its state, so a saved expert keeps it
        self.register_buffer("trained_lambda", torch.tensor(float(lam)))

    @property
    def lam(self) -> float:
        """The depth penalty λ, stored in the state dict (saved and loaded with the weights)."""
        return float(self.trained_lambda)

    def step(self, n: int, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_n (B, C), h_n (B,)); the last layer never continues."""
        y = torch.softmax(self.classifiers[n](pooled), dim=-1)
        h = torch.sigmoid(self.halting[n](pooled)).squeeze(-1)
        return y, (torch.zeros_like(h) if n == self.n_layers - 1 else h)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-6)


class DactText(nn.Module):
    """A BERT-style Hugging Face encoder (embeddings + a list of layers taking `attention_mask`) run layer by
    layer with DACT units; `halting`: 'sample' (each meme stops on its own), 'batch' (the batch stops when
    every meme may) or 'none' (all layers, for training and full-depth baselines)."""

    def __init__(self, backbone: nn.Module, layers: nn.ModuleList, *, n_classes: int, lam: float = 0.01):
        super().__init__()
        if not hasattr(backbone, "embeddings"):
            raise PipelineError(f"DACT needs a BERT-style encoder with .embeddings; {type(backbone).__name__} has none")
        self.backbone, self.layers = backbone, layers
        self.units = DactUnits(hidden=int(backbone.config.hidden_size), n_layers=len(layers), n_classes=n_classes,
                               lam=lam)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, halting: str = "none",
                max_layers: int | None = None) -> DactOutput:
        if halting not in ("none", "sample", "batch"):
            raise ValueError(f"halting must be none, sample or batch, got {halting!r}")
        n_layers = min(max_layers or len(self.layers), len(self.layers))
        batch = len(input_ids)
        hidden = self.backbone.embeddings(input_ids=input_ids)  # (B, L, D)
        mask = attention_mask.bool()
        a = hidden.new_zeros(batch, self.units.classifiers[0].out_features)
        feats = hidden.new_zeros(batch, hidden.shape[-1])
        p = hidden.new_ones(batch)
        used = torch.zeros(batch, dtype=torch.long, device=hidden.device)
        ponder = hidden.new_zeros(batch)
        active = torch.arange(batch, device=hidden.device)  # rows of the batch still running
        for n in range(n_layers):
            hidden = self.layers[n](hidden, attention_mask=mask[:, None, None, :])
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
            pooled = mean_pool(hidden, mask)
            y, h = self.units.step(n, pooled)
            if n == n_layers - 1:
                h = torch.zeros_like(h)  # a truncated run assigns all remaining mass to its last layer
            weight = p[active] * (1 - h)
            a = a.index_add(0, active, weight.unsqueeze(-1) * y)
            feats = feats.index_add(0, active, weight.unsqueeze(-1) * pooled)
            p = p.index_put((active,), p[active] * h)
            used = used.index_add(0, active, torch.ones_like(active))
            ponder = ponder.index_add(0, active, p[active])
            if halting == "none" or n == n_layers - 1:
                continue
            done = settled(a[active], p[active])
            if halting == "batch":
                done = done.all().expand_as(done)
            if done.any():
                keep = ~done
                active, hidden, mask = active[keep], hidden[keep], mask[keep]
                if not len(active):
                    break
        # stopped memes keep mass p: the bound guarantees it cannot change their answer; normalise for output
        total = a.sum(-1, keepdim=True).clamp(min=1e-12)
        return DactOutput(probs=a / total, features=feats / total, layers_used=used, ponder=ponder)

    def loss(self, out: DactOutput, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """NLL of the accumulated probabilities + λ Σ_n p_n (mean over the batch)."""
        nll = nn.functional.nll_loss(out.probs.clamp(min=1e-12).log(), labels, weight=weight)
        return nll + self.units.lam * out.ponder.mean()
