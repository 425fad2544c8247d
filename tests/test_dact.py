"""DACT: the halting arithmetic on a hand-checked example, skipped layers really skipped, λ saved with the
weights, and a tiny training run whose early exits never change an answer."""
import pytest
import torch
from transformers import BertConfig, BertModel

from Step_4.dact import DactText, DactUnits, accumulate, settled


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
