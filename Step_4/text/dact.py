"""Adaptive depth for the text expert: DACT (Differentiable Adaptive Computation Time, arXiv 2109.11745).

After every transformer layer n a unit reads the mean-pooled hidden state through a small projection and
gives class probabilities y_n and a continue probability h_n. With p_0 = 1 and p_n = p_{n-1} h_n (the mass
not yet assigned),

    a_n = a_{n-1} + p_{n-1} (1 - h_n) y_n,     h_N = 0 at the last layer, so a_N sums to 1.

The remaining layers can add at most p_n to any class, so once the top class of a_n leads every other by
at least p_n the answer cannot change and that meme stops: its later layers are never computed (the
batch shrinks). Training minimises NLL(a_N) + λ Σ_n p_n: Σ_n p_n is the expected number of layers run
beyond the first, so λ trades accuracy for depth. The pooled states are accumulated with the same
weights; that accumulation is the text feature fusion reads.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.errors import PipelineError

HALTING = ("none", "sample", "batch")


def accumulate(a: torch.Tensor, p: torch.Tensor, y: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One DACT step: (a_n, p_n) from (a_{n-1}, p_{n-1}), y_n (B, C) and h_n (B,)."""
    return a + (p * (1 - h)).unsqueeze(-1) * y, p * h


def settled(a: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(B,) True where the remaining mass p cannot change the top class of a: top - second >= p."""
    top2 = a.topk(2, dim=-1).values
    return top2[:, 0] - top2[:, 1] >= p


@dataclass
class DactOutput:
    probs: torch.Tensor  # (B, C) accumulated class probabilities a, normalised
    features: torch.Tensor  # (B, D) the same accumulation over pooled hidden states: the text feature
    layers_used: torch.Tensor  # (B,) layers computed per meme
    ponder: torch.Tensor  # (B,) sum of p_n over the layers run: the depth penalty
    states: torch.Tensor | None = None  # (B, N, D) every layer's pooled state, when asked for (no halting)


class DactUnits(nn.Module):
    """Per layer: projection (shared or own) → intermediate classifier and continue-probability head."""

    def __init__(self, *, hidden: int, n_layers: int, n_classes: int, lam: float = 0.05, unit_hidden: int = 128,
                 shared_projection: bool = False, dropout: float = 0.1):
        super().__init__()
        if lam < 0:
            raise ValueError(f"lambda must be >= 0, got {lam}")
        self.n_layers, self.n_classes = n_layers, n_classes

        def projection() -> nn.Module:
            return nn.Sequential(nn.Linear(hidden, unit_hidden), nn.GELU(), nn.Dropout(dropout))

        self.projections = nn.ModuleList([projection()] if shared_projection else
                                         [projection() for _ in range(n_layers)])
        self.classifiers = nn.ModuleList(nn.Linear(unit_hidden, n_classes) for _ in range(n_layers))
        self.halting = nn.ModuleList(nn.Linear(unit_hidden, 1) for _ in range(n_layers))
        # the lambda a model was trained with travels in its state, so a saved expert keeps it
        self.register_buffer("trained_lambda", torch.tensor(float(lam)))

    @property
    def lam(self) -> float:
        """The depth penalty λ, stored in the state dict (saved and loaded with the weights)."""
        return float(self.trained_lambda)

    def step(self, n: int, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_n (B, C), h_n (B,)); the last layer never continues."""
        z = self.projections[n if len(self.projections) > 1 else 0](pooled)
        y = torch.softmax(self.classifiers[n](z), dim=-1)
        h = torch.sigmoid(self.halting[n](z)).squeeze(-1)
        return y, (torch.zeros_like(h) if n == self.n_layers - 1 else h)


class Accumulation:
    """The running sums of one batch; rows leave `active` as they halt."""

    def __init__(self, batch: int, n_classes: int, dim: int, like: torch.Tensor):
        self.a = like.new_zeros(batch, n_classes)
        self.features = like.new_zeros(batch, dim)
        self.p = like.new_ones(batch)
        self.ponder = like.new_zeros(batch)
        self.used = torch.zeros(batch, dtype=torch.long, device=like.device)
        self.active = torch.arange(batch, device=like.device)

    def add(self, y: torch.Tensor, h: torch.Tensor, pooled: torch.Tensor) -> None:
        """One layer's outputs for the active rows."""
        rows = self.active
        if len(rows) == len(self.p):  # every row still running (always so in training): plain arithmetic
            weight = (self.p * (1 - h)).unsqueeze(-1)
            self.a, self.features = self.a + weight * y, self.features + weight * pooled
            self.p = self.p * h
            self.used, self.ponder = self.used + 1, self.ponder + self.p
            return
        weight = (self.p[rows] * (1 - h)).unsqueeze(-1)
        self.a = self.a.index_add(0, rows, weight * y)
        self.features = self.features.index_add(0, rows, weight * pooled)
        self.p = self.p.index_put((rows,), self.p[rows] * h)
        self.used = self.used.index_add(0, rows, torch.ones_like(rows))
        self.ponder = self.ponder.index_add(0, rows, self.p[rows])

    def halted(self, halting: str) -> torch.Tensor:
        """(active,) True for the active rows that stop now."""
        done = settled(self.a[self.active], self.p[self.active])
        return done.all().expand_as(done) if halting == "batch" else done

    def output(self, states: torch.Tensor | None = None) -> DactOutput:
        # halted memes keep mass p: the bound guarantees it cannot change their answer; normalise for output
        total = self.a.sum(-1, keepdim=True).clamp(min=1e-12)
        return DactOutput(probs=self.a / total, features=self.features / total, layers_used=self.used,
                          ponder=self.ponder, states=states)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-6)


def attention_mask_4d(mask: torch.Tensor, dtype: torch.dtype, eager: bool) -> torch.Tensor | None:
    """The (B, 1, 1, L) mask a BERT layer takes: boolean for SDPA, additive (0 / dtype min) for the eager
    attention, which adds the mask to the scores; None when no position is padding (the layer then runs the
    unmasked kernel, as the full model does)."""
    if bool(mask.all()):
        return None
    mask = mask[:, None, None, :]
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min) \
        if eager else mask


def check_halting(halting: str) -> None:
    if halting not in HALTING:
        raise ValueError(f"halting must be one of {HALTING}, got {halting!r}")


def dact_forward(backbone: nn.Module, layers, units: DactUnits, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor, *, halting: str = "none", max_layers: int | None = None,
                 keep_states: bool = False) -> DactOutput:
    """Run a BERT-style encoder (backbone.embeddings, then `layers` taking `attention_mask`) layer by layer with
    DACT units. halting: 'sample' (each meme stops on its own), 'batch' (the batch stops when every meme may),
    'none' (all layers: training and full-depth baselines). max_layers truncates the run (the last layer run
    takes all remaining mass). keep_states returns every layer's pooled state (needs halting 'none')."""
    check_halting(halting)
    if keep_states and halting != "none":
        raise ValueError("keep_states needs halting='none'")
    n_layers = min(max_layers or len(layers), len(layers))
    hidden = backbone.embeddings(input_ids=input_ids)  # (B, L, D)
    mask = attention_mask.bool()
    run = Accumulation(len(input_ids), units.n_classes, hidden.shape[-1], hidden)
    states = []
    eager = getattr(backbone.config, "_attn_implementation", "sdpa") == "eager"
    layer_mask = attention_mask_4d(mask, hidden.dtype, eager)
    for n in range(n_layers):
        hidden = layers[n](hidden, attention_mask=layer_mask)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        pooled = mean_pool(hidden, mask)
        if keep_states:
            states.append(pooled)
        y, h = units.step(n, pooled)
        if n == n_layers - 1:
            h = torch.zeros_like(h)  # a truncated run assigns all remaining mass to its last layer
        run.add(y, h, pooled)
        if halting == "none" or n == n_layers - 1:
            continue
        done = run.halted(halting)
        if done.any():
            keep = ~done
            run.active, hidden, mask = run.active[keep], hidden[keep], mask[keep]
            layer_mask = attention_mask_4d(mask, hidden.dtype, eager)
            if not len(run.active):
                break
    return run.output(torch.stack(states, dim=1) if keep_states else None)


def dact_over_states(units: DactUnits, states: torch.Tensor, halting: str = "none") -> DactOutput:
    """The same accumulation over precomputed pooled states (B, N, D) of a frozen encoder: trains the units
    without running the encoder, and gives the answers and depths that `dact_forward` would."""
    check_halting(halting)
    run = Accumulation(len(states), units.n_classes, states.shape[-1], states)
    n_layers = states.shape[1]
    for n in range(n_layers):
        pooled = states[run.active, n]
        run.add(*units.step(n, pooled), pooled)
        if halting == "none" or n == n_layers - 1:
            continue
        done = run.halted(halting)
        run.active = run.active[~done]
        if not len(run.active):
            break
    return run.output()


def dact_loss(units: DactUnits, out: DactOutput, labels: torch.Tensor,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """NLL of the accumulated probabilities + λ Σ_n p_n (mean over the batch)."""
    nll = nn.functional.nll_loss(out.probs.clamp(min=1e-12).log(), labels, weight=weight)
    return nll + units.lam * out.ponder.mean()


class DactText(nn.Module):
    """A BERT-style Hugging Face encoder with DACT units (the layers are the backbone's own, not registered
    twice)."""

    def __init__(self, backbone: nn.Module, layers, *, n_classes: int, lam: float = 0.05, unit_hidden: int = 128,
                 shared_projection: bool = False):
        super().__init__()
        if not hasattr(backbone, "embeddings"):
            raise PipelineError(f"DACT needs a BERT-style encoder with .embeddings; {type(backbone).__name__} has none")
        self.backbone, self._layers = backbone, tuple(layers)
        self.units = DactUnits(hidden=int(backbone.config.hidden_size), n_layers=len(self._layers),
                               n_classes=n_classes, lam=lam, unit_hidden=unit_hidden,
                               shared_projection=shared_projection)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, halting: str = "none",
                max_layers: int | None = None, keep_states: bool = False) -> DactOutput:
        return dact_forward(self.backbone, self._layers, self.units, input_ids, attention_mask, halting=halting,
                            max_layers=max_layers, keep_states=keep_states)

    def loss(self, out: DactOutput, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return dact_loss(self.units, out, labels, weight)
