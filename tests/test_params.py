from dataclasses import dataclass

import pytest

from core.errors import PipelineError
from core.params import build, check, section
from Step_3.shard import ShardConfig
from Step_4.config import TrainConfig


@dataclass
class Inner:
    rate: float = 0.5

    def __post_init__(self):
        check(self.rate > 0, "rate must be > 0")


@dataclass
class Outer:
    name: str
    inner: Inner


def test_misspelled_key_is_named_with_a_suggestion():
    with pytest.raises(PipelineError, match=r"unknown key 'rat' \(did you mean 'rate'\?\)"):
        build(Outer, {"name": "x", "inner": {"rat": 1.0}}, where="sec")


def test_missing_required_key_and_wrong_type():
    with pytest.raises(PipelineError, match="required key 'name'"):
        build(Outer, {"inner": {}}, where="sec")
    with pytest.raises(PipelineError, match="sec.inner.rate': expected a number"):
        build(Outer, {"name": "x", "inner": {"rate": "fast"}}, where="sec")


def test_impossible_values_fail_before_work():
    with pytest.raises(PipelineError, match="rate must be > 0"):
        build(Outer, {"name": "x", "inner": {"rate": -1}}, where="sec")
    with pytest.raises(PipelineError, match="epochs must be >= 1"):
        build(TrainConfig, {"epochs": -3}, where="train")
    with pytest.raises(PipelineError, match="fractions must sum to 1"):
        build(ShardConfig, {"fractions": {"train": 0.7, "val": 0.2, "test_seen": 0.2}}, where="shard")


def test_repository_params_load(repo_root):
    """Every section of the committed params.yaml builds into its dataclass."""
    from Step_1.config import PrepareConfig
    from Step_2.ocr import OcrConfig
    from Step_3.taxonomy import TaxonomyConfig
    from Step_4.tabular.config import TabularExpertConfig, TabularModelConfig, TabularPretrainConfig
    from Step_4.text.config import TextExpertConfig
    from Step_4.vision.config import VisionExpertConfig
    from Step_5.config import FusionConfig

    params = repo_root / "params.yaml"
    for cls, name in [(PrepareConfig, "prepare"), (OcrConfig, "ocr"), (TaxonomyConfig, "taxonomy"),
                      (ShardConfig, "shard"), (TextExpertConfig, "text_expert"), (VisionExpertConfig, "vision_expert"),
                      (TabularModelConfig, "tabular_model"), (TabularPretrainConfig, "tabular_pretrain"),
                      (TabularExpertConfig, "tabular_expert"), (FusionConfig, "fusion")]:
        section(cls, name, params)


def test_exponent_floats_and_fusion_modality_order():
    from Step_5.config import FusionConfig

    assert build(TrainConfig, {"lr": "1e-3"}, where="train").lr == 0.001
    cfg = build(FusionConfig, {"modalities": ["tabular", "text"]}, where="fusion")
    assert cfg.modalities == ["text", "tabular"]  # masks and tokens always follow one fixed order
    with pytest.raises(PipelineError, match="modalities repeat"):
        build(FusionConfig, {"modalities": ["text", "text", "vision"]}, where="fusion")


def test_ocr_settings_are_checked():
    from Step_2.tesseract import OcrSettings

    with pytest.raises(PipelineError, match="not one of"):
        build(OcrSettings, {"preprocess": "outlined"}, where="ocr.settings")
    with pytest.raises(PipelineError, match="upscale must be"):
        build(OcrSettings, {"upscale": 0}, where="ocr.settings")


def test_fusion_head_params_are_checked_against_the_head():
    from Step_5.models import fusion_params

    assert fusion_params("gated", {"temperature": 2})["temperature"] == 2.0
    with pytest.raises(PipelineError, match=r"unknown key 'temperatur' \(did you mean 'temperature'\?\)"):
        fusion_params("gated", {"temperatur": 2.0})
    with pytest.raises(PipelineError, match="fusion.transformer.n_heads': expected an integer"):
        fusion_params("transformer", {"n_heads": "four"})


def test_progress_bars_update_rarely_when_the_output_is_a_log(monkeypatch):
    import io

    from core.progress import LOG_INTERVAL, progress

    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal, as under `dvc repro > log` or CI
    assert progress(range(3), mininterval=2.0).mininterval == LOG_INTERVAL
    tty = io.StringIO()
    tty.isatty = lambda: True
    monkeypatch.setattr("sys.stderr", tty)
    assert progress(range(3), mininterval=2.0).mininterval == 2.0


def test_auto_loader_sizes_follow_the_device(monkeypatch):
    """'auto' extraction batch and loader workers: the CPU values the committed features were made with on the
    CPU; larger batches and workers (capped by the cores, less one) on CUDA; numbers stay as given."""
    import core.threads
    from Step_4.text.config import TextExpertConfig
    from Step_4.vision.config import VisionExpertConfig
    from Step_5.config import FinetuneConfig

    text = build(TextExpertConfig, {"embed_batch_size": "auto", "num_workers": "auto"}, where="text_expert")
    vision = build(VisionExpertConfig, {}, where="vision_expert")  # auto is the default
    for cfg, on_cpu in ((text, 128), (vision, 64)):
        resolved = cfg.for_device("cpu")
        assert (resolved.embed_batch_size, resolved.num_workers) == (on_cpu, 0)
        assert resolved.for_device("cuda") == resolved  # resolved once, for good
    monkeypatch.setattr(core.threads, "cores", lambda: 16)
    assert (text.for_device("cuda:1").embed_batch_size, text.for_device("cuda:1").num_workers) == (512, 4)
    assert (vision.for_device("cuda").embed_batch_size, vision.for_device("cuda").num_workers) == (256, 8)
    assert FinetuneConfig().workers("cuda") == 8 and FinetuneConfig().workers("cpu") == 0
    monkeypatch.setattr(core.threads, "cores", lambda: 2)
    assert vision.for_device("cuda").num_workers == 1 and FinetuneConfig().workers("cuda") == 1
    fixed = build(VisionExpertConfig, {"embed_batch_size": 16, "num_workers": 3}, where="vision_expert")
    assert (fixed.for_device("cuda").embed_batch_size, fixed.for_device("cpu").num_workers) == (16, 3)
    with pytest.raises(PipelineError, match=r"'vision_expert.num_workers': expected an integer, got 'many'; "
                                            r"or 'many' is not one of \['auto'\]"):
        build(VisionExpertConfig, {"num_workers": "many"}, where="vision_expert")
    with pytest.raises(PipelineError, match="embed_batch_size must be >= 1 or auto, got 0"):
        build(TextExpertConfig, {"embed_batch_size": 0}, where="text_expert")
