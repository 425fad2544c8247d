"""FT-Transformer encoder for the tabular metadata, and its masked-feature-modelling (MFM) pretraining.

Built from `rtdl_revisiting_models` blocks (Gorishniy et al., "Revisiting Deep Learning Models for Tabular
Data"): `_CLSEmbedding`, `LinearEmbeddings`, `CategoricalEmbeddings` make the tokens and the blocks of an
`FTTransformerBackbone` (built without its output head) mix them. Inputs are what `Step_3.tabular.TabularSchema`
produces, batched: `x_num` (B, n_numeric) float, `missing` (B, n_numeric) float 1.0 where missing,
`x_cat` (B, n_cat) int64 with 0 = missing, 1 = unseen, 2.. = vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from rtdl_revisiting_models import CategoricalEmbeddings, FTTransformerBackbone, LinearEmbeddings, _CLSEmbedding
from torch import Tensor
from torch.nn.parameter import Parameter

CAT_MISSING = 0  # x_cat index of a missing categorical value (Step_3.tabular.MISSING)


@dataclass
class FTConfig:
    """Everything needed to rebuild an `FTTransformerEncoder`; JSON-serialisable via `dataclasses.asdict`."""

    n_numeric: int
    cardinalities: list[int]
    d_block: int = 64
    n_blocks: int = 2
    attention_n_heads: int = 4
    attention_dropout: float = 0.1
    ffn_d_hidden_multiplier: float = 4 / 3  # rtdl's default for ReGLU
    ffn_dropout: float = 0.1
    residual_dropout: float = 0.0

    def __post_init__(self) -> None:
        self.cardinalities = [int(c) for c in self.cardinalities]
        if self.n_numeric < 0:
            raise ValueError(f"{self.n_numeric=} must be non-negative")
        if self.n_numeric == 0 and not self.cardinalities:
            raise ValueError(f"no features: {self.n_numeric=}, {self.cardinalities=}")
        if any(c < 1 for c in self.cardinalities):
            raise ValueError(f"cardinalities must be positive: {self.cardinalities=}")
        if self.n_blocks < 1:
            raise ValueError(f"{self.n_blocks=} must be positive")
        if self.d_block % self.attention_n_heads:
            raise ValueError(f"d_block must be a multiple of attention_n_heads: "
                             f"{self.d_block=}, {self.attention_n_heads=}")

    @property
    def n_features(self) -> int:
        return self.n_numeric + len(self.cardinalities)


def _uniform_(param: Tensor) -> Tensor:
    """rtdl's embedding init: U(-d**-0.5, d**-0.5) with d the last dimension."""
    bound = param.shape[-1] ** -0.5
    return nn.init.uniform_(param, -bound, bound)


class FTTransformerEncoder(nn.Module):
    """Numeric + categorical features -> CLS embedding (B, d_block)."""

    def __init__(self, *, config: FTConfig):
        super().__init__()
        self.config = config
        d = config.d_block
        self.out_dim = d
        self.cls_embedding = _CLSEmbedding(d)
        self.num_embeddings = LinearEmbeddings(config.n_numeric, d) if config.n_numeric else None
        # Per-feature token used instead of the linear embedding when the numeric value is missing.
        self.missing_embedding = _uniform_(Parameter(torch.empty(config.n_numeric, d))) if config.n_numeric else None
        self.cat_embeddings = CategoricalEmbeddings(config.cardinalities, d, True) if config.cardinalities else None
        self.backbone = FTTransformerBackbone(
            d_out=None,
            n_blocks=config.n_blocks,
            d_block=d,
            attention_n_heads=config.attention_n_heads,
            attention_dropout=config.attention_dropout,
            ffn_d_hidden=None,
            ffn_d_hidden_multiplier=config.ffn_d_hidden_multiplier,
            ffn_dropout=config.ffn_dropout,
            ffn_activation="ReGLU",
            residual_dropout=config.residual_dropout,
        )
        # rtdl's head starts with LayerNorm (pre-norm residual stream is unnormalised); we stop after it.
        self.normalization = nn.LayerNorm(d)

    def tokens(self, x_num: Tensor, missing: Tensor, x_cat: Tensor) -> Tensor:
        """(B, 1 + n_numeric + n_cat, D): the CLS token, then one token per numeric, then per categorical feature."""
        cfg = self.config
        if x_num.ndim != 2 or x_num.shape[1] != cfg.n_numeric:
            raise ValueError(f"x_num must be (B, {cfg.n_numeric}): {x_num.shape=}")
        if missing.shape != x_num.shape:
            raise ValueError(f"missing must match x_num: {missing.shape=}, {x_num.shape=}")
        if x_cat.ndim != 2 or x_cat.shape[1] != len(cfg.cardinalities) or x_cat.shape[0] != x_num.shape[0]:
            raise ValueError(f"x_cat must be (B={x_num.shape[0]}, {len(cfg.cardinalities)}): {x_cat.shape=}")
        if x_cat.dtype.is_floating_point or x_cat.dtype == torch.bool:
            raise ValueError(f"x_cat must be integer: {x_cat.dtype=}")
        parts = [self.cls_embedding((x_num.shape[0],))]  # (B, 1, D)
        if self.num_embeddings is not None:
            is_missing = missing.bool()[..., None]  # (B, n_num, 1)
            # Zero-fill first so NaN/inf at missing positions cannot leak into gradients.
            x = self.num_embeddings(x_num.masked_fill(is_missing[..., 0], 0.0))  # (B, n_num, D)
            parts.append(torch.where(is_missing, self.missing_embedding.to(x.dtype), x))
        if self.cat_embeddings is not None:
            if not x_cat.is_cuda:  # on a GPU this check would wait for the device every step; load_tabular_split
                cards = torch.tensor(cfg.cardinalities, device=x_cat.device)  # checks the rows once, on the CPU
                if bool(((x_cat < 0) | (x_cat >= cards)).any()):
                    raise ValueError(f"x_cat out of range for cardinalities {cfg.cardinalities}")
            parts.append(self.cat_embeddings(x_cat))  # (B, n_cat, D)
        return torch.cat(parts, dim=1)

    def encode(self, tokens: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D): all tokens through the transformer blocks (no output head)."""
        return self._blocks(tokens, cls_only_last=False)

    def forward(self, x_num: Tensor, missing: Tensor, x_cat: Tensor) -> Tensor:
        """(B, D): the layer-normalised CLS token after the transformer blocks."""
        x = self._blocks(self.tokens(x_num, missing, x_cat), cls_only_last=True)  # (B, 1, D)
        return self.normalization(x[:, 0])

    def _blocks(self, x: Tensor, *, cls_only_last: bool) -> Tensor:
        """FTTransformerBackbone.forward without the head; with cls_only_last, the last block's attention
        queries only the CLS token (as rtdl does), which gives the same CLS output for less work."""
        if x.ndim != 3:
            raise ValueError(f"tokens must be (B, T, D): {x.ndim=}")
        if x.shape[-1] != self.out_dim:
            raise ValueError(f"tokens' last dimension must be {self.out_dim}: {x.shape=}")
        blocks = self.backbone.blocks
        for i, block in enumerate(blocks):
            identity = x
            if "attention_normalization" in block:  # the first block has none (rtdl)
                x = block["attention_normalization"](x)
            queries = x[:, :1] if cls_only_last and i + 1 == len(blocks) else x
            x = block["attention"](queries, x)
            x = block["attention_residual_dropout"](x)
            x = identity[:, : x.shape[1]] + x
            identity = x
            x = block["ffn"](block["ffn_normalization"](x))
            x = identity + block["ffn_residual_dropout"](x)
            x = block["output"](x)
        return x


class MaskedFeatureModel(nn.Module):
    """MFM pretraining: replace a random fraction of feature tokens by a learned mask token, reconstruct them.

    The mask token is learned per feature (FT-Transformer has no positional encoding, so a shared mask
    token would not say which feature is hidden). Numeric targets are the standardised values (MSE),
    categorical targets the class index (cross-entropy). Only observed values are targets.
    """

    def __init__(self, *, encoder: FTTransformerEncoder, mask_fraction: float = 0.15):
        super().__init__()
        if not 0.0 < mask_fraction <= 1.0:
            raise ValueError(f"{mask_fraction=} must be in (0, 1]")
        cfg = encoder.config
        d = encoder.out_dim
        self.encoder = encoder
        self.mask_fraction = mask_fraction
        self.mask_embedding = _uniform_(Parameter(torch.empty(cfg.n_features, d)))  # (F, D)
        self.normalization = nn.LayerNorm(d)
        self.num_head_weight = _uniform_(Parameter(torch.empty(cfg.n_numeric, d)))  # (n_num, D)
        self.num_head_bias = Parameter(torch.zeros(cfg.n_numeric))  # (n_num,)
        self.cat_heads = nn.ModuleList([nn.Linear(d, c) for c in cfg.cardinalities])

    def observed(self, missing: Tensor, x_cat: Tensor) -> Tensor:
        """(B, F) bool: True where the feature's value is present (numeric features first)."""
        return torch.cat([~missing.bool(), x_cat != CAT_MISSING], dim=1)

    def choose_mask(self, observed: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B, F) bool tokens to mask: each observed token with probability mask_fraction, and at least one
        token per row (an observed one when the row has any). Targets are `mask & observed`."""
        if observed.ndim != 2:
            raise ValueError(f"{observed.ndim=}")
        device = generator.device if generator is not None else observed.device
        scores = torch.rand(observed.shape, generator=generator, device=device).to(observed.device)  # (B, F)
        mask = (scores < self.mask_fraction) & observed
        forced = F.one_hot(torch.where(observed, scores, scores + 1.0).argmin(dim=1), observed.shape[1]).bool()
        return mask | (forced & ~mask.any(dim=1, keepdim=True))

    def forward(self, x_num: Tensor, missing: Tensor, x_cat: Tensor,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """{"loss" = num_loss + cat_loss, "num_loss", "cat_loss", "cat_accuracy"}; means over masked targets,
        zero when there are none."""
        n_num = self.encoder.config.n_numeric
        tokens = self.encoder.tokens(x_num, missing, x_cat)  # (B, 1 + F, D)
        observed = self.observed(missing, x_cat)  # (B, F)
        mask = self.choose_mask(observed, generator)  # (B, F)
        target = mask & observed  # (B, F)
        features = torch.where(mask[..., None], self.mask_embedding.to(tokens.dtype), tokens[:, 1:])  # (B, F, D)
        h = self.encoder.encode(torch.cat([tokens[:, :1], features], dim=1))[:, 1:]  # (B, F, D)
        h = self.normalization(h)

        zero = h.new_zeros(())
        num_loss = zero
        if n_num:
            t = target[:, :n_num].to(h.dtype)  # (B, n_num)
            pred = (h[:, :n_num] * self.num_head_weight).sum(-1) + self.num_head_bias  # (B, n_num)
            err = (pred - x_num.masked_fill(~observed[:, :n_num], 0.0)) ** 2
            num_loss = (err * t).sum() / t.sum().clamp(min=1.0)
        cat_loss, cat_accuracy = zero, zero
        if len(self.cat_heads):
            t = target[:, n_num:].to(h.dtype)  # (B, n_cat)
            ce, correct = [], []
            for j, head in enumerate(self.cat_heads):
                logits = head(h[:, n_num + j])  # (B, card_j)
                ce.append(F.cross_entropy(logits, x_cat[:, j], reduction="none"))
                correct.append((logits.argmax(-1) == x_cat[:, j]).to(h.dtype))
            n = t.sum().clamp(min=1.0)
            cat_loss = (torch.stack(ce, 1) * t).sum() / n
            cat_accuracy = ((torch.stack(correct, 1) * t).sum() / n).detach()
        return {"loss": num_loss + cat_loss, "num_loss": num_loss, "cat_loss": cat_loss, "cat_accuracy": cat_accuracy}


_NO_DECAY_MODULES = (nn.LayerNorm, nn.BatchNorm1d, nn.GroupNorm, nn.Embedding,
                     LinearEmbeddings, CategoricalEmbeddings, _CLSEmbedding)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups as rtdl's `FTTransformer.make_parameter_groups`, for any model: norms, biases, embeddings and
    learned tokens (parameters named `*embedding`, e.g. missing/mask tokens) get weight_decay 0. Trainable only."""
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if isinstance(module, _NO_DECAY_MODULES) or name.endswith("bias") or name.endswith("embedding"):
                no_decay.append(param)
            else:
                decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
