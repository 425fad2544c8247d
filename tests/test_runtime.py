"""Exported runtimes (Step_4.runtime): OpenVINO and ONNX Runtime give PyTorch's features within the stated
tolerance, bf16 stays close to fp32, `auto` picks per device and encoder, and text batches sorted by length give
the same features as unsorted ones."""
from types import SimpleNamespace

import pytest
import torch

from core.errors import PipelineError
from Step_3.loaders import sorted_in_buffers
from Step_4 import runtime
from Step_4.context import ExpertContext
from Step_4.expert import Expert
from Step_4.features.cache import fingerprint
from Step_4.features.passes import extract_split
from Step_4.text.encoder import TextEncoder
from Step_4.vision.encoder import VisionEncoder
from tests.test_feature_cache import write_shard_set


@pytest.fixture(scope="module")
def vision():
    return VisionEncoder(weights="bundled").eval()  # real weights: features of the scale the pipeline sees


@pytest.fixture(scope="module")
def text():
    return TextEncoder(max_length=32).eval()


def features(encoder, batches, run: str, precision: str = "fp32") -> list[torch.Tensor]:
    with torch.no_grad(), runtime.inference(encoder, run, precision, "cpu"):
        return [encoder.features(b) for b in batches]


def image_batches() -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    return [{"image": torch.randint(0, 256, (n, 3, 224, 224), dtype=torch.uint8, generator=gen)} for n in (4, 3)]


@pytest.mark.parametrize("run", ["openvino", "onnxruntime"])
def test_exported_vision_features_equal_torch(vision, run):
    batches = image_batches()  # two batch sizes: the export takes any
    reference = features(vision, batches, "torch")
    for got, want in zip(features(vision, batches, run), reference):
        assert got.dtype == torch.float32 and got.shape == want.shape
        assert (got - want).abs().max().item() <= runtime.FP32_TOLERANCE
    assert "features" not in vars(vision)  # the block restored the encoder


@pytest.mark.parametrize("run", ["openvino", "onnxruntime"])
def test_exported_text_features_equal_torch(text, run):
    texts = [["a short one", "a much longer caption that pads the others", ""], ["two words", "three more words"]]
    batches = [text.tokenize(t) for t in texts]  # different batch sizes and lengths
    assert batches[0]["input_ids"].shape[1] != batches[1]["input_ids"].shape[1]
    for got, want in zip(features(text, batches, run), features(text, batches, "torch")):
        assert (got - want).abs().max().item() <= runtime.FP32_TOLERANCE


def test_bf16_stays_close_to_fp32(vision):
    batches = image_batches()[:1]
    reference = features(vision, batches, "torch")[0]
    for run in ("openvino", "torch"):
        got = features(vision, batches, run, "bf16")[0]
        cosine = torch.nn.functional.cosine_similarity(got, reference, dim=1)
        assert cosine.min().item() >= runtime.BF16_COSINE, run
        assert not torch.equal(got, reference) or run == "openvino"  # OpenVINO falls back to f32 without bf16


def test_auto_runs_text_in_bf16_only_on_a_cpu_with_bf16_instructions(vision, text, monkeypatch):
    for has_bf16 in (True, False):
        monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: has_bf16)
        assert runtime.plan(text, "torch", "auto", "cpu")["precision"] == ("bf16" if has_bf16 else "fp32")
        assert runtime.plan(vision, "auto", "auto", "cpu")["precision"] == "fp32"  # its bf16 drifts too far
        assert runtime.plan(text, "torch", "fp32", "cpu")["precision"] == "fp32"  # an explicit choice stands
    assert runtime.plan(text, "torch", "auto", "cuda:0")["precision"] == "bf16"
    texts = [["a short one", "a much longer caption that pads the others", ""], ["two words", "three more words"]]
    batches = [text.tokenize(t) for t in texts]
    for got, want in zip(features(text, batches, "torch", "bf16"), features(text, batches, "torch")):
        cosine = torch.nn.functional.cosine_similarity(got, want, dim=1)
        assert cosine.min().item() >= runtime.BF16_CPU_COSINE and not torch.equal(got, want)


def test_plan_and_clear_errors(vision, text, monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    assert runtime.plan(vision, "auto", "auto", "cpu") == {"runtime": "openvino", "precision": "fp32"}
    assert runtime.plan(vision, "auto", "auto", "cuda:0") == {"runtime": "torch", "precision": "bf16"}
    no_export = torch.nn.Linear(2, 2)  # e.g. the DACT encoder: nothing to export, auto means torch
    assert runtime.plan(no_export, "auto", "fp32", "cpu")["runtime"] == "torch"
    with pytest.raises(PipelineError, match="runtime must be one of"):
        runtime.plan(vision, "tensorrt", "auto", "cpu")
    with pytest.raises(PipelineError, match="onnxruntime runs fp32"):
        features(vision, image_batches(), "onnxruntime", "bf16")
    with pytest.raises(PipelineError, match="runs on the CPU"):
        with runtime.inference(vision, "openvino", "fp32", "cuda"):
            pass
    assert fingerprint(text, runtime.plan(text, "openvino", "auto", "cpu")) != \
        fingerprint(text, runtime.plan(text, "torch", "auto", "cpu"))


def test_sorted_buffers_keep_every_sample():
    stage = sorted_in_buffers(lambda run: [len(s) for s in run], 3)
    assert list(stage(iter(["ccc", "a", "bb", "dddd", "e"]))) == ["a", "bb", "ccc", "e", "dddd"]
    assert list(stage(iter([]))) == []


def test_length_sorted_text_extraction_gives_the_same_features(tiny_pipeline, tmp_path, text):
    """The stage's path: batches sorted by text length (fewer pad tokens), the output id-sorted as before."""
    reader = write_shard_set(tiny_pipeline, tmp_path / "shards")
    expert = Expert(modality="text", encoder=text, n_classes=2, head_hidden=8, dropout=0.0)
    ctx = ExpertContext(reader=reader, device="cpu")
    cfg = SimpleNamespace(embed_batch_size=4, num_workers=0, runtime="torch", precision="fp32")
    sorted_run = extract_split(expert, cfg, ctx, "train")
    text.batch_order = None  # the unsorted path
    try:
        plain = extract_split(expert, cfg, ctx, "train")
    finally:
        del text.batch_order
    assert sorted_run["ids"] == plain["ids"]
    torch.testing.assert_close(sorted_run["features"], plain["features"], rtol=1e-5, atol=1e-5)
