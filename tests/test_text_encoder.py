import pytest
import torch

from core.errors import PipelineError
from Step_4.expert import Expert, save_expert
from Step_4.registry import load_expert
from Step_4.text.encoder import TextEncoder, resolve_text_model


@pytest.fixture(scope="module")
def minilm():
    return TextEncoder(model="bundled:all-minilm-l6-v2", pooling="mean", max_length=32).eval()


def test_bundled_minilm_is_really_pretrained(minilm):
    with torch.no_grad():
        emb = minilm(**minilm.tokenize(["cat", "kitten", "stocks"]))
    emb = torch.nn.functional.normalize(emb, dim=-1)
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2


def test_local_folder_and_missing_model(minilm, tmp_path):
    assert resolve_text_model("bundled:all-minilm-l6-v2").endswith("model")
    folder = resolve_text_model("bundled:all-minilm-l6-v2")
    local = TextEncoder(model=folder, pooling="cls", max_length=16)
    assert local.out_dim == 384
    with pytest.raises(PipelineError, match="cannot load"):
        TextEncoder(model=str(tmp_path / "nothing-here"))
    with pytest.raises(PipelineError, match="no bundled model"):
        TextEncoder(model="bundled:nope")


def test_freeze_top_layers(minilm):
    minilm.freeze(2)
    trainable = {n.split(".")[2] for n, p in minilm.backbone.named_parameters() if p.requires_grad and "layer." in n}
    assert trainable == {"4", "5"}
    minilm.freeze(0)
    assert not any(p.requires_grad for p in minilm.parameters())


def test_text_expert_saves_and_reloads_offline(minilm, tmp_path):
    torch.manual_seed(0)
    expert = Expert(modality="text", encoder=minilm, n_classes=2, head_hidden=16, dropout=0.1).eval()
    batch = minilm.tokenize(["LOOK AT THEM", ""])
    save_expert(expert, tmp_path / "text", classes=["benign", "abuse_hate"], extra={})
    loaded, _ = load_expert(tmp_path / "text")
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), expert(batch))


def test_text_expert_forward_backward(minilm):
    torch.manual_seed(0)
    minilm.freeze(1)
    expert = Expert(modality="text", encoder=minilm, n_classes=2, head_hidden=8, dropout=0.0).train()
    batch = minilm.tokenize(["MEME ONE", "ANOTHER MEME TEXT", ""])
    logits = expert(batch)
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()
    logits.sum().backward()
    top = minilm.backbone.encoder.layer[5].output.dense.weight
    assert top.grad is not None and torch.isfinite(top.grad).all()
    assert minilm.backbone.encoder.layer[0].output.dense.weight.grad is None
    minilm.freeze(0)


def test_saved_tokenizer_files_do_not_depend_on_earlier_calls(tmp_path):
    """The fast tokenizer keeps the truncation and padding of its last call; the saved files must not, or a run
    whose features came from the cache would save other bytes than one that encoded them."""
    fresh = TextEncoder(model="bundled:all-minilm-l6-v2", pooling="mean", max_length=24)
    fresh.save_files(tmp_path / "fresh")
    used = TextEncoder(model="bundled:all-minilm-l6-v2", pooling="mean", max_length=24)
    used.tokenize(["a caption long enough to be padded against", "short"])
    used.batch_order(["another text"])
    used.tokenize(["and once more"])
    used.save_files(tmp_path / "used")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "used" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()
    reloaded = TextEncoder(model=str(tmp_path / "used"), pooling="mean", max_length=24, pretrained=False)
    assert torch.equal(reloaded.tokenize(["short", "a longer text here"])["input_ids"],
                       used.tokenize(["short", "a longer text here"])["input_ids"])
