"""The expert and fusion registries, and freezing that works for any timm or Hugging Face model."""
import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import PipelineError
from core.params import build
from Step_3.tabular import fit_schema
from Step_4.features.batches import expert_inputs
from Step_4.registry import EXPERTS, create_expert, modalities
from Step_4.tabular.config import TabularExpertConfig
from Step_4.temporal.config import TemporalExpertConfig
from Step_4.text.config import TextExpertConfig
from Step_4.text.encoder import TextEncoder, resolve_text_model
from Step_4.vision.config import VisionExpertConfig
from Step_4.vision.encoder import VisionEncoder
from Step_5.models import FUSIONS, FusionDims, create_fusion

META = {"classes": ["benign", "abuse_hate"], "tabular": fit_schema(["a"], ["b"], [{"tabular": {"a": 2.0, "b": "x"}},
                                                                                {"tabular": {"a": 5.0, "b": "y"}}])}


def test_every_registered_kind_builds_and_runs_forward_and_backward():
    assert modalities() == ("text", "vision", "tabular", "temporal") and set(EXPERTS) == set(modalities())
    cfgs = {"text": TextExpertConfig(max_length=16), "vision": VisionExpertConfig(weights="none")}
    sample = {"id": "x", "text": "hello there", "image": Image.new("RGB", (64, 64), "white"),
              "meta": {"label": 1, "tabular": {"a": 1.0, "b": None}},
              "series": np.abs(np.random.default_rng(0).normal(size=(72, 5))).astype(np.float32)}
    cfgs["tabular"] = build(TabularExpertConfig, {"model": {"d_block": 8, "attention_n_heads": 2}}, "tabular_expert")
    cfgs["temporal"] = build(TemporalExpertConfig, {"architecture": "transformer"}, "temporal_expert")
    for kind in modalities():
        torch.manual_seed(0)
        expert = create_expert(kind, cfgs[kind], META)
        transform, collate = expert_inputs({kind: expert.encoder}, train=True, meta=META)
        batch = collate([transform(sample), transform(sample)])
        assert batch[f"{kind}_present"].tolist() == [True, True]
        logits = expert(batch)
        assert logits.shape == (2, 2) and torch.isfinite(logits).all()
        logits.sum().backward()
        assert any(p.grad is not None for p in expert.head.parameters())


def test_convnext_fine_tunes_its_top_stage_through_timm_groups():
    encoder = VisionEncoder(model="convnext_atto", weights="none")
    encoder.freeze(1)
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("model.stages.3.", "model.head.")) for n in trainable)
    assert any(n.startswith("model.head.norm") for n in trainable)  # the head norm joins the top stage
    encoder.freeze(2)
    assert {n.split(".")[2] for n, p in encoder.named_parameters() if p.requires_grad and "stages" in n} == {"2", "3"}


def test_a_non_bert_text_model_fine_tunes_its_top_layers(tmp_path):
    """A tiny random DistilBERT (layers at transformer.layer, not encoder.layer), found by layer_path: auto."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    AutoTokenizer.from_pretrained(resolve_text_model("bundled:all-minilm-l6-v2")).save_pretrained(tmp_path)
    DistilBertModel(DistilBertConfig(vocab_size=30522, dim=32, n_layers=3, n_heads=2, hidden_dim=64)).save_pretrained(
        tmp_path)
    encoder = TextEncoder(model=str(tmp_path), max_length=16)
    encoder.freeze(1)
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("backbone.transformer.layer.2.") for n in trainable)
    explicit = TextEncoder(model=str(tmp_path), max_length=16, layer_path="transformer.layer")
    explicit.freeze(2)
    assert {n.split(".")[3] for n, p in explicit.named_parameters() if p.requires_grad} == {"1", "2"}
    with pytest.raises(PipelineError, match="layer_path"):
        TextEncoder(model=str(tmp_path), max_length=16, layer_path="encoder.layer").freeze(1)


@pytest.mark.parametrize("method", sorted(FUSIONS))
def test_every_fusion_method_is_created_by_name(method):
    dims = FusionDims(inputs={"text": 6, "vision": 5}, n_classes=2)
    model = create_fusion(method, dims, {})
    batch = {"text": torch.randn(3, 6), "vision": torch.randn(3, 5), "text_logits": torch.randn(3, 2),
             "vision_logits": torch.randn(3, 2), "mask": torch.ones(3, 2, dtype=torch.bool)}
    assert model(batch).shape == (3, 2)
    with pytest.raises(ValueError, match="registered"):
        create_fusion("nope", dims, {})
