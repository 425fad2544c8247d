"""Expert = encoder + MLP head. Every expert exposes forward_features (embedding) and forward_head (logits).

A saved expert folder holds model.safetensors (all weights) and expert.json (everything needed
to rebuild the architecture: modality, classes, encoder config, head sizes), plus encoder/ with
the tokenizer and transformer config for text. Loading needs neither params.yaml nor a model hub.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from core.errors import PipelineError
from core.files import read_json, write_json

MODALITIES = ("text", "vision", "tabular")


class MLPHead(nn.Module):
    """features (B, D) → Linear → GELU → Dropout → Linear → logits (B, C)."""

    def __init__(self, *, in_dim: int, hidden: int, n_classes: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class Expert(nn.Module):
    """One modality's classifier. A batch holds either raw inputs or precomputed 'features'."""

    def __init__(self, *, modality: str, encoder: nn.Module, n_classes: int, head_hidden: int, dropout: float):
        super().__init__()
        if modality not in MODALITIES:
            raise ValueError(f"{modality=} is not one of {MODALITIES}")
        self.modality = modality
        self.encoder = encoder
        self.head = MLPHead(in_dim=encoder.out_dim, hidden=head_hidden, n_classes=n_classes, dropout=dropout)
        self.head_config = {"hidden": head_hidden, "dropout": dropout, "n_classes": n_classes}

    @property
    def out_dim(self) -> int:
        return self.encoder.out_dim

    def forward_features(self, batch: dict) -> torch.Tensor:
        if self.modality == "text":
            return self.encoder(batch["input_ids"], batch["attention_mask"])
        if self.modality == "vision":
            return self.encoder(batch["image"])
        return self.encoder(batch["x_num"], batch["missing"], batch["x_cat"])

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, batch: dict) -> torch.Tensor:
        features = batch["features"] if "features" in batch else self.forward_features(batch)
        return self.forward_head(features)


def encoder_config(expert: Expert) -> dict:
    enc = expert.encoder
    if expert.modality == "tabular":
        return dataclasses.asdict(enc.config)
    return enc.config()


def save_expert(expert: Expert, folder: Path, *, classes: list[str], extra: dict) -> None:
    """Write model.safetensors + expert.json (+ encoder/ tokenizer and config for text) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in expert.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    if expert.modality == "text":
        expert.encoder.save_config(folder / "encoder")
    write_json(folder / "expert.json", {"modality": expert.modality, "classes": classes,
                                        "encoder": encoder_config(expert), "head": expert.head_config, **extra})


def build_encoder(modality: str, config: dict, *, folder: Path | None = None) -> nn.Module:
    """Rebuild an encoder's architecture from its saved config (weights are loaded separately)."""
    if modality == "text":
        from Step_4.text_encoder import TextEncoder

        source = str(folder / "encoder") if folder is not None else config["model"]
        encoder = TextEncoder(model=source, pooling=config["pooling"], max_length=config["max_length"], pretrained=False)
        encoder.model_name = config["model"]
        return encoder
    if modality == "vision":
        from Step_4.vision_encoder import VisionEncoder

        return VisionEncoder.from_config(config)
    from Step_4.tabular_model import FTConfig, FTTransformerEncoder

    return FTTransformerEncoder(config=FTConfig(**config))


def load_expert(folder: str | Path, device: str = "cpu") -> tuple[Expert, dict]:
    """Rebuild a saved expert (eval mode) and return it with its expert.json."""
    folder = Path(folder)
    if not (folder / "expert.json").is_file() or not (folder / "model.safetensors").is_file():
        raise PipelineError(f"{folder} is not a saved expert (expert.json and model.safetensors expected); "
                            "run `dvc repro` to train the experts")
    info = read_json(folder / "expert.json")
    encoder = build_encoder(info["modality"], info["encoder"], folder=folder)
    head = info["head"]
    expert = Expert(modality=info["modality"], encoder=encoder, n_classes=head["n_classes"],
                    head_hidden=head["hidden"], dropout=head["dropout"])
    expert.load_state_dict(load_file(str(folder / "model.safetensors")))
    return expert.to(device).eval(), info
