"""The text encoder with adaptive depth (`text_expert.adaptive: dact`).

`DactTextEncoder` wraps the text encoder's backbone with DACT units (Step_4.text.dact). Its feature is the
accumulated pooled state followed by the log of the accumulated class probabilities; the expert's head
(`DactHead`) reads those last columns, so the expert's answer is the DACT answer wherever features travel
(embeddings, fusion, predict). In eval mode it halts (`dact.halting`) and records the layers each meme used.
"""
from __future__ import annotations

import torch
from torch import nn

from core.errors import PipelineError
from Step_4.hf_layers import find_layers
from Step_4.text.config import DactConfig, TextExpertConfig
from Step_4.text.dact import DactOutput, DactUnits, dact_forward
from Step_4.text.encoder import TextEncoder

LOG_FLOOR = 1e-6  # probabilities below this are clipped before the log (features stay finite)


class DactHead(nn.Module):
    """The expert's head: the log-probabilities DACT put at the end of the feature (no weights)."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.n_classes = n_classes

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features[:, -self.n_classes:]


class DactTextEncoder(nn.Module):
    """Tokenised text (B, L) → [accumulated pooled state (B, D), log accumulated probabilities (B, C)]."""

    reads_images = False

    def __init__(self, text: TextEncoder, *, n_classes: int, cfg: DactConfig):
        super().__init__()
        if text.family or not hasattr(text.backbone, "embeddings"):
            raise PipelineError(f"text_expert.adaptive: dact needs a BERT-style encoder (embeddings + a list of "
                                f"layers); {text.model_name!r} is not one")
        self.text = text
        self.layers = tuple(find_layers(text.backbone, text.layer_path))  # the backbone's own, not registered twice
        self.units = DactUnits(hidden=text.out_dim, n_layers=len(self.layers), n_classes=n_classes, lam=cfg.lam,
                               unit_hidden=cfg.unit_hidden, shared_projection=cfg.shared_projection)
        self.halting = cfg.halting
        self.settings = {"lambda": cfg.lam, "halting": cfg.halting, "unit_hidden": cfg.unit_hidden,
                         "shared_projection": cfg.shared_projection, "n_classes": n_classes}
        self.n_classes, self.pooled_dim = n_classes, text.out_dim
        self.out_dim = text.out_dim + n_classes
        self.last: DactOutput | None = None
        self.layers_used: torch.Tensor | None = None  # (B,) of the last batch

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def tokenizer(self):
        return self.text.tokenizer

    def inputs(self, *, train: bool, meta: dict):
        return self.text.inputs(train=train, meta=meta)

    content_key = staticmethod(TextEncoder.content_key)

    def run(self, batch: dict, *, halting: str, keep_states: bool = False, max_layers: int | None = None) -> DactOutput:
        return dact_forward(self.text.backbone, self.layers, self.units, batch["input_ids"], batch["attention_mask"],
                            halting=halting, keep_states=keep_states, max_layers=max_layers)

    def features(self, batch: dict) -> torch.Tensor:
        out = self.run(batch, halting="none" if self.training else self.halting)
        self.last, self.layers_used = out, out.layers_used
        return dact_feature(out)

    def auxiliary_loss(self) -> torch.Tensor:
        """λ · mean Σ_n p_n of the last forward (the engine adds it to the task loss)."""
        return self.units.lam * self.last.ponder.mean()

    def make_head(self, n_classes: int) -> nn.Module:
        return DactHead(n_classes)

    def freeze(self, trainable_layers: int = 0) -> None:
        """The backbone as TextEncoder.freeze; the units always train."""
        self.text.freeze(trainable_layers)
        self.units.requires_grad_(True)

    def to_config(self) -> dict:
        return {**self.text.to_config(), "adaptive": "dact", "dact": self.settings}

    def save_files(self, folder) -> None:
        self.text.save_files(folder)


def dact_feature(out: DactOutput) -> torch.Tensor:
    return torch.cat([out.features, out.probs.clamp(min=LOG_FLOOR).log()], dim=-1)


def build_dact(text: TextEncoder, cfg: TextExpertConfig, meta: dict) -> DactTextEncoder:
    return DactTextEncoder(text, n_classes=len(meta["classes"]), cfg=cfg.dact)


def rebuild_dact(text: TextEncoder, config: dict) -> DactTextEncoder:
    """The architecture of a saved DACT expert; λ comes back with the weights (the units' trained_lambda)."""
    d = config["dact"]
    cfg = DactConfig(lam=d["lambda"], halting=d["halting"], unit_hidden=d["unit_hidden"],
                     shared_projection=d["shared_projection"])
    return DactTextEncoder(text, n_classes=d["n_classes"], cfg=cfg)
