"""Expert = encoder + MLP head. Every expert exposes forward_features (embedding) and forward_head (logits).

A saved expert folder holds model.safetensors (all weights) and expert.json (everything needed
to rebuild the architecture: modality, classes, encoder config, head sizes), plus encoder/ with
the files an encoder saves beside (the tokenizer and transformer config for text). Loading needs
neither params.yaml nor a model hub.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from core.files import write_json


class MLPHead(nn.Module):
    """features (B, D) → [input dropout] → Linear → GELU → Dropout → Linear → logits (B, C). Dropping input
    features in training keeps the head from leaning on a few directions of the frozen features that only hold
    for the material it was trained on (docs/results.md: heads that transfer)."""

    def __init__(self, *, in_dim: int, hidden: int, n_classes: int, dropout: float, input_dropout: float = 0.0):
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(self.input_dropout(features))


class Expert(nn.Module):
    """One modality's classifier. A batch holds either raw inputs or precomputed 'features'."""

    def __init__(self, *, modality: str, encoder: nn.Module, n_classes: int, head_hidden: int, dropout: float,
                 input_dropout: float = 0.0):
        super().__init__()
        self.modality = modality
        self.encoder = encoder
        make_head = getattr(encoder, "make_head", None)  # an encoder that classifies itself (DACT) brings its head
        self.head = (make_head(n_classes) if make_head else
                     MLPHead(in_dim=encoder.out_dim, hidden=head_hidden, n_classes=n_classes, dropout=dropout,
                             input_dropout=input_dropout))
        self.head_config = {"hidden": head_hidden, "dropout": dropout, "n_classes": n_classes}
        if input_dropout:
            self.head_config["input_dropout"] = input_dropout

    @property
    def out_dim(self) -> int:
        return self.encoder.out_dim

    def forward_features(self, batch: dict) -> torch.Tensor:
        return self.encoder.features(batch)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, batch: dict) -> torch.Tensor:
        features = batch["features"] if "features" in batch else self.forward_features(batch)
        return self.forward_head(features)

    def auxiliary_loss(self) -> torch.Tensor | float:
        """The encoder's extra training term for the last forward (DACT's depth penalty), else 0."""
        extra = getattr(self.encoder, "auxiliary_loss", None)
        return extra() if extra is not None and self.training else 0.0


def save_expert(expert: Expert, folder: Path, *, classes: list[str], extra: dict) -> None:
    """Write model.safetensors + expert.json (+ encoder/ tokenizer and config for text) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in expert.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    save_files = getattr(expert.encoder, "save_files", None)  # e.g. the text tokenizer and model config
    if save_files is not None:
        save_files(folder / "encoder")
    write_json(folder / "expert.json", {"modality": expert.modality, "classes": classes,
                                        "encoder": expert.encoder.to_config(), "head": expert.head_config, **extra})


def make_expert(modality: str, encoder: nn.Module, cfg, meta: dict) -> Expert:
    """An expert of `modality` around `encoder`, with the head its params section `cfg` asks for."""
    return Expert(modality=modality, encoder=encoder, n_classes=len(meta["classes"]), head_hidden=cfg.head_hidden,
                  dropout=cfg.dropout, input_dropout=getattr(cfg, "input_dropout", 0.0))
