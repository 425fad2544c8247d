"""Fusion heads over expert embeddings. Every head takes a batch with one (B, D_m) tensor per
modality plus 'mask' (B, M) — True where the modality is present — and returns logits (B, C).
A missing modality's values never reach the output: they are zeroed or masked out.
"""
from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import PipelineError
from core.params import build
from Step_4.registry import modalities

FUSIONS: dict[str, type[nn.Module]] = {}


def register_fusion(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a fusion head available to `create_fusion(name, ...)` and the fusion stage."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        FUSIONS[name] = cls
        return cls

    return add


def fusion_params(method: str, params: dict) -> dict:
    """params.yaml's fusion.<method> checked against the head's keyword arguments: names (with a suggestion),
    types, and the defaults filled in."""
    cls = FUSIONS[method]
    hints = typing.get_type_hints(cls.__init__)
    fields = [(name, hints[name], dataclasses.field(default=p.default))
              for name, p in inspect.signature(cls.__init__).parameters.items() if name not in ("self", "dims")]
    return dataclasses.asdict(build(dataclasses.make_dataclass(f"{cls.__name__}Params", fields), params,
                                    where=f"fusion.{method}"))


def create_fusion(method: str, dims: FusionDims, params: dict) -> nn.Module:
    """A new fusion head: `method` as registered, `params` its section fusion.<method> as a dict."""
    if method not in FUSIONS:
        raise ValueError(f"unknown fusion method {method!r}; registered: {sorted(FUSIONS)}")
    try:
        return FUSIONS[method](dims=dims, **params)
    except ValueError as err:
        raise PipelineError(f"params 'fusion.{method}': {err}") from None


@dataclass
class FusionDims:
    """Input sizes per modality (in the registry's modality order) and number of classes."""

    inputs: dict[str, int]
    n_classes: int

    @property
    def modalities(self) -> list[str]:
        return [m for m in modalities() if m in self.inputs]


class ModalityNorm(nn.Module):
    """Per-modality LayerNorm, then zero for absent modalities. Returns a list of (B, D_m)."""

    def __init__(self, dims: FusionDims):
        super().__init__()
        self.modalities = dims.modalities
        self.norms = nn.ModuleDict({m: nn.LayerNorm(dims.inputs[m]) for m in self.modalities})

    def forward(self, batch: dict) -> list[torch.Tensor]:
        mask = batch["mask"]
        return [self.norms[m](batch[m]) * mask[:, i:i + 1].to(batch[m].dtype) for i, m in enumerate(self.modalities)]


@register_fusion("concat")
class ConcatFusion(nn.Module):
    """Concatenated (normalised) embeddings + presence flags → Linear → GELU → Dropout → Linear."""

    def __init__(self, *, dims: FusionDims, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.norm = ModalityNorm(dims)
        width = sum(dims.inputs.values()) + len(dims.modalities)
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dims.n_classes))

    def forward(self, batch: dict) -> torch.Tensor:
        parts = self.norm(batch) + [batch["mask"].float()]
        return self.head(torch.cat(parts, dim=-1))  # (B, C)


@register_fusion("gated")
class GatedFusion(nn.Module):
    """Mixture of experts: project each embedding to d, a router gives softmax weights over present
    experts (with temperature), the weighted sum goes to the classifier.

    An optional regulariser (balance_weight) pulls the batch-mean gate toward uniform, so no
    expert is ignored; the last forward's gate weights are kept in `self.last_gates` (B, M).
    """

    def __init__(self, *, dims: FusionDims, d_fusion: int = 128, router_hidden: int = 64, temperature: float = 1.0,
                 dropout: float = 0.2, balance_weight: float = 0.0):
        super().__init__()
        if temperature <= 0 or balance_weight < 0:
            raise ValueError(f"temperature must be > 0 and balance_weight >= 0: {temperature=}, {balance_weight=}")
        self.modalities = dims.modalities
        self.temperature, self.balance_weight = temperature, balance_weight
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.LayerNorm(dims.inputs[m]), nn.Linear(dims.inputs[m], d_fusion),
                                                    nn.GELU()) for m in self.modalities})
        m = len(self.modalities)
        self.router = nn.Sequential(nn.Linear(m * d_fusion + m, router_hidden), nn.GELU(), nn.Linear(router_hidden, m))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_fusion, d_fusion), nn.GELU(),
                                        nn.Dropout(dropout), nn.Linear(d_fusion, dims.n_classes))
        self.last_gates: torch.Tensor | None = None

    def gates(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate weights (B, M), projections (B, M, d)); weights are 0 for absent modalities."""
        mask = batch["mask"]
        proj = torch.stack([self.proj[m](batch[m]) for m in self.modalities], dim=1)  # (B, M, d)
        proj = proj * mask.unsqueeze(-1).to(proj.dtype)
        scores = self.router(torch.cat([proj.flatten(1), mask.float()], dim=-1)) / self.temperature  # (B, M)
        # rows with no modality at all keep unmasked scores over zeroed projections (output = bias only)
        scores = scores.masked_fill(~mask & mask.any(1, keepdim=True), float("-inf"))
        return torch.softmax(scores, dim=-1), proj

    def forward(self, batch: dict) -> torch.Tensor:
        weights, proj = self.gates(batch)
        self.last_gates = weights
        fused = (weights.unsqueeze(-1) * proj).sum(1)  # (B, d)
        return self.classifier(fused)

    def auxiliary_loss(self) -> torch.Tensor | float:
        """KL(mean gate ‖ uniform) × balance_weight, from the last forward."""
        if self.balance_weight <= 0 or self.last_gates is None:
            return 0.0
        mean = self.last_gates.mean(0).clamp(min=1e-8)  # (M,)
        return self.balance_weight * (mean * (mean * len(mean)).log()).sum()


@register_fusion("transformer")
class TransformerFusion(nn.Module):
    """One token per modality (+ learned modality-type embedding, optional CLS), a small
    TransformerEncoder with key-padding masks for absent modalities, masked mean-pool (or CLS) → head."""

    def __init__(self, *, dims: FusionDims, d_model: int = 128, n_heads: int = 4, n_layers: int = 2,
                 dropout: float = 0.1, use_cls: bool = False):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model must be divisible by n_heads: {d_model=}, {n_heads=}")
        self.modalities = dims.modalities
        self.use_cls = use_cls
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.LayerNorm(dims.inputs[m]), nn.Linear(dims.inputs[m], d_model))
                                   for m in self.modalities})
        self.type_embedding = nn.Parameter(torch.zeros(len(self.modalities), d_model))
        nn.init.normal_(self.type_embedding, std=0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model)) if use_cls else None
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_model, dims.n_classes))

    def forward(self, batch: dict) -> torch.Tensor:
        present = batch["mask"]  # (B, M)
        tokens = torch.stack([self.proj[m](batch[m]) for m in self.modalities], dim=1)  # (B, M, d)
        tokens = tokens * present.unsqueeze(-1).to(tokens.dtype) + self.type_embedding
        pad = ~present & present.any(1, keepdim=True)  # a row with nothing present attends to its zeroed tokens
        if self.cls is not None:
            tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1)  # (B, 1+M, d)
            pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1)
        hidden = self.norm(self.encoder(tokens, src_key_padding_mask=pad))  # (B, T, d)
        if self.cls is not None:
            pooled = hidden[:, 0]
        else:
            keep = present.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return self.head(pooled)


@register_fusion("late")
class LateFusion(nn.Module):
    """Average of the experts' class probabilities over present modalities (no trainable weights).
    Reads each expert's cached logits: batch['<m>_logits'] (B, C)."""

    def __init__(self, *, dims: FusionDims):
        super().__init__()
        self.modalities = dims.modalities

    def forward(self, batch: dict) -> torch.Tensor:
        mask = batch["mask"].float()  # (B, M)
        probs = torch.stack([torch.softmax(batch[f"{m}_logits"], -1) for m in self.modalities], 1)  # (B, M, C)
        avg = (probs * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return avg.clamp(min=1e-8).log()  # log-probabilities act as logits



class SharedSpace(nn.Module):
    """Each modality projected to a shared d-dim space and L2-normalised; an absent modality gets a learned
    stand-in vector instead, so products with it stay informative rather than zero. Returns {m: (B, d)}."""

    def __init__(self, dims: FusionDims, d: int, dropout: float):
        super().__init__()
        self.modalities = dims.modalities
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.LayerNorm(dims.inputs[m]), nn.Dropout(dropout),
                                                    nn.Linear(dims.inputs[m], d)) for m in self.modalities})
        self.absent = nn.ParameterDict({m: nn.Parameter(torch.randn(d) * 0.02) for m in self.modalities})

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        out = {}
        for i, m in enumerate(self.modalities):
            z = nn.functional.normalize(self.proj[m](batch[m]), dim=-1)
            stand_in = nn.functional.normalize(self.absent[m], dim=-1).expand_as(z)
            out[m] = torch.where(batch["mask"][:, i:i + 1], z, stand_in)
        return out


def interaction_pair(dims: FusionDims, pair: list[str]) -> tuple[str, str]:
    if len(pair) != 2 or pair[0] == pair[1] or any(m not in dims.modalities for m in pair):
        raise ValueError(f"pair must name two different fused modalities of {dims.modalities}, got {pair}")
    return pair[0], pair[1]


@register_fusion("align")
class AlignFusion(nn.Module):
    """Hate-CLIPper 'align': the two paired modalities (text, vision) are projected to a shared space and
    fused by their element-wise product; the other modalities' projections and the presence flags join it
    before an MLP. With aligned (CLIP-style) encoders the product measures where image and text agree."""

    def __init__(self, *, dims: FusionDims, d_align: int = 256, hidden: int = 256, dropout: float = 0.2,
                 pair: list[str] = ("text", "vision")):
        super().__init__()
        self.a, self.b = interaction_pair(dims, list(pair))
        self.others = [m for m in dims.modalities if m not in (self.a, self.b)]
        self.space = SharedSpace(dims, d_align, dropout)
        width = d_align * (1 + len(self.others)) + len(dims.modalities)
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, dims.n_classes))

    def forward(self, batch: dict) -> torch.Tensor:
        z = self.space(batch)
        parts = [z[self.a] * z[self.b]] + [z[m] for m in self.others] + [batch["mask"].float()]
        return self.head(torch.cat(parts, dim=-1))  # (B, C)


@register_fusion("cross")
class CrossFusion(nn.Module):
    """Hate-CLIPper 'cross': the outer product of the paired projections, z_a z_bᵀ (d × d), read by a linear
    layer. With rank > 0 (the default) that layer is factorised, out_j = Σ_k (u_jk·z_a)(v_jk·z_b), so no
    (B, d, d) tensor is ever built; rank 0 builds the full outer product (memory grows with d²)."""

    def __init__(self, *, dims: FusionDims, d_cross: int = 128, rank: int = 16, out_features: int = 256,
                 hidden: int = 256, dropout: float = 0.2, pair: list[str] = ("text", "vision")):
        super().__init__()
        if rank < 0 or d_cross < 1 or out_features < 1:
            raise ValueError(f"rank must be >= 0, d_cross and out_features >= 1: {rank=}, {d_cross=}")
        self.a, self.b = interaction_pair(dims, list(pair))
        self.others = [m for m in dims.modalities if m not in (self.a, self.b)]
        self.rank, self.out_features = rank, out_features
        self.space = SharedSpace(dims, d_cross, dropout)
        if rank:
            self.u = nn.Linear(d_cross, out_features * rank, bias=False)
            self.v = nn.Linear(d_cross, out_features * rank, bias=False)
        else:
            self.full = nn.Linear(d_cross * d_cross, out_features)
        width = out_features + d_cross * len(self.others) + len(dims.modalities)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, dims.n_classes))

    def interaction(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        """(B, out_features) from the outer product of za and zb (B, d)."""
        if self.rank:
            prod = self.u(za) * self.v(zb)  # (B, out * rank)
            return prod.view(len(za), self.out_features, self.rank).sum(-1)
        return self.full(torch.einsum("bi,bj->bij", za, zb).flatten(1))

    def forward(self, batch: dict) -> torch.Tensor:
        z = self.space(batch)
        parts = [self.interaction(z[self.a], z[self.b])] + [z[m] for m in self.others] + [batch["mask"].float()]
        return self.head(torch.cat(parts, dim=-1))  # (B, C)
