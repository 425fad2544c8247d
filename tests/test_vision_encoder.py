"""VisionEncoder: bundled weights, shapes, freezing, save/rebuild, weight sources, transforms."""
from __future__ import annotations

import json

import pytest
import timm
import torch
import torchvision.transforms as T
from PIL import Image
from safetensors.torch import save_file
from skimage.data import chelsea

from core.errors import PipelineError
from Step_4.vision.encoder import VisionEncoder, bundled_state_dict

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def encoder() -> VisionEncoder:
    return VisionEncoder(weights="bundled").eval()


@pytest.fixture(scope="module")
def cat_image() -> Image.Image:
    return Image.fromarray(chelsea())


def test_bundled_weights_are_imagenet_pretrained(encoder, cat_image):
    classifier = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    classifier.load_state_dict(bundled_state_dict("tf_efficientnet_lite0", classifier))
    x = encoder.transform(train=False)(cat_image).unsqueeze(0)
    with torch.no_grad():
        logits = classifier(encoder.normalize(x))
        features = encoder(x)
    assert logits.argmax(1).item() in IMAGENET_CATS
    # The encoder is the same network minus its classifier.
    torch.testing.assert_close(features @ classifier.classifier.weight.T + classifier.classifier.bias, logits,
                               rtol=1e-4, atol=1e-4)


def test_unknown_model_names_close_matches():
    with pytest.raises(PipelineError, match="tf_efficientnet_lite0"):
        VisionEncoder(model="tf_efficientnet_lite", weights="none")


def test_forward_shape_and_freeze_gradients():
    enc = VisionEncoder(weights="none")
    assert enc.out_dim == 1280
    enc.freeze(trainable_blocks=1)
    enc.train()
    out = enc(torch.randn(2, 3, 224, 224))
    assert out.shape == (2, 1280) and torch.isfinite(out).all()
    out.sum().backward()
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("model.blocks.6.", "model.conv_head.", "model.bn2.")) for n in trainable)
    for name, p in enc.named_parameters():
        assert (p.grad is not None) == (name in trainable), name
    # Frozen BatchNorm keeps its statistics in train mode; the unfrozen top stage does not.
    assert not enc.model.bn1.training and enc.model.bn2.training
    enc.freeze(trainable_blocks=-1)
    assert all(p.requires_grad for p in enc.parameters()) and enc.model.bn1.training
    with pytest.raises(PipelineError, match="trainable_blocks"):
        enc.freeze(trainable_blocks=9)


def test_from_config_reproduces_features(encoder):
    cfg = json.loads(json.dumps(encoder.to_config()))
    assert cfg["model"] == "tf_efficientnet_lite0" and cfg["weights"] == "bundled"
    rebuilt = VisionEncoder.from_config(cfg)
    rebuilt.load_state_dict(encoder.state_dict())
    rebuilt.eval()
    assert rebuilt.data_config == encoder.data_config
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), encoder(x), rtol=0, atol=0)


def test_local_weight_files(encoder, tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(PipelineError, match="nope.safetensors"):
        VisionEncoder(weights=str(missing))

    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = encoder(x)
    for name, state in [("timm.safetensors", encoder.model.state_dict()),
                        ("encoder.pth", encoder.state_dict())]:
        path = tmp_path / name
        if path.suffix == ".safetensors":
            save_file(state, str(path))
        else:
            torch.save(state, path)
        loaded = VisionEncoder(weights=str(path)).eval()
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)


def test_hub_offline_is_a_pipeline_error(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(PipelineError, match="bundled"):
        VisionEncoder(weights="hub")


def test_transforms(encoder, cat_image):
    x = encoder.transform(train=False)(cat_image)
    assert x.shape == (3, 224, 224) and x.dtype == torch.uint8
    y = encoder.transform(train=True)(cat_image.convert("RGBA"))
    assert y.shape == (3, 224, 224) and y.dtype == torch.uint8
    # the uint8 resize stays within 2 levels of PIL's, and batched normalisation in the encoder equals
    # torchvision's per-image ToTensor + Normalize bit for bit
    pil = T.PILToTensor()(T.Resize((224, 224), interpolation=T.InterpolationMode.BICUBIC)(cat_image))
    assert (x.int() - pil.int()).abs().max() <= 2
    reference = T.Normalize(encoder.data_config["mean"], encoder.data_config["std"])(pil.float() / 255)
    assert torch.equal(encoder.normalize(pil.unsqueeze(0))[0], reference)
    with torch.no_grad():  # PIL's resize and this one give features that agree closely
        cosine = torch.nn.functional.cosine_similarity(encoder(x.unsqueeze(0)), encoder(reference.unsqueeze(0)))
    assert cosine.item() > 0.999
