"""Encoders of an engagement series (hours x channels, some hours missing): a 1D-CNN and a per-modality transformer.

Both take `series` (B, T, C) float (already scaled, e.g. log1p and standardised) and `observed` (B, T) bool (False
for a missing hour, and for every hour of a meme without a series), and return one vector per meme (B, out_dim).
A missing hour never reaches the output: its values are zeroed before the CNN (which also sees the mask as a
channel and pools over observed hours only) and are key-padding in the transformer's attention. So a meme whose
series is missing entirely gets the same vector whatever its values are.
"""
from __future__ import annotations

import torch
from torch import nn


def masked_pool(x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, 2D): mean and max over the observed steps (zeros where a meme has none)."""
    weight = observed.unsqueeze(-1).to(x.dtype)
    count = weight.sum(1).clamp(min=1.0)
    mean = (x * weight).sum(1) / count
    top = x.masked_fill(~observed.unsqueeze(-1), float("-inf")).amax(1)
    top = torch.where(observed.any(1, keepdim=True), top, torch.zeros_like(top))
    return torch.cat([mean, top], dim=-1)


class ConvSeriesEncoder(nn.Module):
    """Conv blocks (Conv1d, BatchNorm, GELU) over time, then masked mean + max pooling and a projection."""

    def __init__(self, *, channels: int, hidden: list[int] | tuple[int, ...] = (32, 64, 64), kernel: int = 5,
                 out_dim: int = 64, dropout: float = 0.1):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (same-length convolutions), got {kernel}")
        blocks, width = [], channels + 1  # + the observed-hour mask as a channel
        for size in hidden:
            blocks += [nn.Conv1d(width, size, kernel, padding=kernel // 2), nn.BatchNorm1d(size), nn.GELU()]
            width = size
        self.blocks = nn.Sequential(*blocks)
        self.project = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, out_dim), nn.GELU())
        self.out_dim = out_dim

    def forward(self, series: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        mask = observed.unsqueeze(-1).to(series.dtype)
        x = torch.cat([series * mask, mask], dim=-1).transpose(1, 2)  # (B, C + 1, T)
        x = self.blocks(x).transpose(1, 2)  # (B, T, hidden[-1])
        return self.project(masked_pool(x, observed))


class TransformerSeriesEncoder(nn.Module):
    """Linear projection, LayerNorm, GELU; a CLS token and learned positions; pre-norm encoder layers whose
    attention skips missing hours; the CLS output, projected."""

    def __init__(self, *, channels: int, steps: int, d_model: int = 64, n_heads: int = 4, n_layers: int = 2,
                 dropout: float = 0.1, out_dim: int = 64):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(channels, d_model), nn.LayerNorm(d_model), nn.GELU())
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.position = nn.Parameter(torch.zeros(1, steps + 1, d_model))
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.project = nn.Sequential(nn.Linear(d_model, out_dim), nn.GELU())
        self.steps, self.out_dim = steps, out_dim

    def forward(self, series: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        if series.shape[1] != self.steps:
            raise ValueError(f"series has {series.shape[1]} steps, the encoder was built for {self.steps}")
        x = self.embed(series * observed.unsqueeze(-1).to(series.dtype))
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.position
        padding = torch.cat([torch.zeros_like(observed[:, :1]), ~observed], dim=1)  # the CLS token is always there
        x = self.encoder(x, src_key_padding_mask=padding)
        return self.project(self.norm(x[:, 0]))


def create_series_encoder(architecture: str, *, channels: int, steps: int, **options) -> nn.Module:
    """'cnn' or 'transformer', with that class's keyword options."""
    if architecture == "cnn":
        return ConvSeriesEncoder(channels=channels, **options)
    if architecture == "transformer":
        return TransformerSeriesEncoder(channels=channels, steps=steps, **options)
    raise ValueError(f"unknown series architecture '{architecture}'; use cnn or transformer")
