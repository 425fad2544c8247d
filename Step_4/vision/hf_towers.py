"""The image tower of a CLIP / SigLIP checkpoint from transformers ('hf:<folder or hub id>') as a vision encoder."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.errors import PipelineError
from Step_4 import aligned_towers
from Step_4.hf_layers import find_layers
from Step_4.vision.encoder import VisionEncoder


class TowerVisionEncoder(VisionEncoder):
    """The image tower of a CLIP / SigLIP model from transformers ('hf:<folder or hub id>'), behind the
    VisionEncoder interface: the same image transform (with the checkpoint's size and normalisation),
    freezing by layer groups (embeddings, each encoder layer; the top norm and projection join the last)."""

    def __init__(self, *, model: str, weights: str = "pretrained", projection: bool = False):
        nn.Module.__init__(self)
        from transformers import AutoConfig

        if weights not in ("pretrained", "none", "bundled"):
            raise PipelineError(f"vision_expert.weights for a transformers tower must be 'pretrained' or 'none', "
                                f"got {weights!r}")
        source = model.removeprefix("hf:")
        source = str(Path(source).expanduser()) if Path(source).expanduser().exists() else source
        try:
            config = AutoConfig.from_pretrained(source)
        except OSError as err:
            raise PipelineError(f"cannot load the config of vision model {model!r}: {err}") from None
        self.family = aligned_towers.family(config)
        if self.family is None:
            raise PipelineError(f"vision model {model!r} is a {config.model_type!r} model; hf: takes CLIP or SigLIP "
                                "checkpoints (for other image models use a timm name)")
        self.model_name, self.weights, self.projection = model, weights, projection
        self.reads_images = True
        self.model = aligned_towers.load_tower(source, config, "vision", pretrained=weights != "none")
        self.out_dim = aligned_towers.tower_dim(self.model, self.family, projection)
        self.data_config = aligned_towers.image_data_config(source, config, self.family)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return aligned_towers.run_tower(self.model, self.family, "vision", self.projection, pixel_values=self.normalize(images))

    def layer_groups(self) -> list[list[str]]:
        layers = find_layers(self.model, modality="vision")
        owner = {id(p): i for i, layer in enumerate(layers) for p in layer.parameters()}
        groups: list[list[str]] = [[] for _ in range(len(layers) + 1)]
        seen_layer = False
        for name, param in self.model.named_parameters():
            if id(param) in owner:
                groups[owner[id(param)] + 1].append(name)
                seen_layer = True
            else:  # below the first layer: embeddings; above: final norm, pooling head, projection
                groups[len(layers) if seen_layer else 0].append(name)
        return [g for g in groups if g]

    def to_config(self) -> dict:
        data_config = {k: list(v) if isinstance(v, tuple) else v for k, v in self.data_config.items()}
        return {"kind": "transformers", "model": self.model_name, "weights": self.weights,
                "projection": self.projection, "data_config": data_config}

    def save_files(self, folder: str | Path) -> None:
        """The tower's config, so the expert rebuilds offline."""
        self.model.config.save_pretrained(folder)

    @classmethod
    def rebuild(cls, config: dict, folder: Path) -> TowerVisionEncoder:
        encoder = cls(model=f"hf:{folder / 'encoder'}", weights="none", projection=config.get("projection", False))
        encoder.model_name, encoder.weights = config["model"], config.get("weights", "pretrained")
        encoder.data_config = {k: tuple(v) if isinstance(v, list) else v for k, v in config["data_config"].items()}
        return encoder
