"""The list of transformer layers inside a Hugging Face model (text encoders, DACT, the HF image towers)."""
from __future__ import annotations

from torch import nn

from core.errors import PipelineError


def find_layers(backbone: nn.Module, layer_path: str = "auto", modality: str = "text") -> nn.ModuleList:
    """The model's list of transformer layers: at `layer_path` (dotted, e.g. 'encoder.layer'), or with 'auto'
    the ModuleList whose length is the config's num_hidden_layers (BERT, RoBERTa, DistilBERT, GPT-2, ViT, ...)."""
    if layer_path != "auto":
        layers = dict(backbone.named_modules()).get(layer_path)
        if not isinstance(layers, nn.ModuleList):
            raise PipelineError(f"{modality} model {type(backbone).__name__} has no list of layers at layer_path "
                                f"{layer_path!r}")
        return layers
    depth = getattr(backbone.config, "num_hidden_layers", None)
    lists = [(name, m) for name, m in backbone.named_modules() if isinstance(m, nn.ModuleList) and len(m) == depth]
    if not lists:
        hint = "; set text_expert.layer_path (e.g. encoder.layer)" if modality == "text" else ""
        raise PipelineError(f"cannot find the transformer layers of {type(backbone).__name__}{hint}")
    return min(lists, key=lambda item: item[0].count("."))[1]
