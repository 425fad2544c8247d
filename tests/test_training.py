import torch

from Step_4.embeddings import tensor_batches
from Step_4.expert import Expert, load_expert, save_expert
from Step_4.tabular_model import FTConfig, FTTransformerEncoder
from Step_4.training import TrainConfig, fit, predict, warmup_cosine


def separable(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return {"features": x, "label": (x[:, 0] + 0.5 * x[:, 1] > 0).long()}


class Head(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.out_dim = 8
        self.net = torch.nn.Linear(8, 2)

    def forward(self, batch):
        return self.net(batch["features"])


def test_loop_drives_loss_down_and_restores_best():
    torch.manual_seed(0)
    train, val = separable(), separable(seed=1)
    model = Head()
    cfg = TrainConfig(epochs=15, batch_size=32, lr=0.05, patience=15, early_stop_metric="macro_f1")
    result = fit(model, train_batches=lambda e: tensor_batches(train, 32, shuffle=True, epoch=e),
                 val_batches=lambda: tensor_batches(val, 100, shuffle=False), steps_per_epoch=7, cfg=cfg,
                 class_counts=[100, 100], device="cpu")
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    labels, probs, _ = predict(model, tensor_batches(val, 100, shuffle=False), "cpu")
    assert (probs.argmax(1) == labels).mean() > 0.9
    assert result.best_score == max(h["val_macro_f1"] for h in result.history)


def test_focal_loss_trains_too():
    torch.manual_seed(0)
    train = separable()
    model = Head()
    cfg = TrainConfig(epochs=5, batch_size=32, lr=0.05, loss="focal")
    result = fit(model, train_batches=lambda e: tensor_batches(train, 32, shuffle=True, epoch=e),
                 val_batches=lambda: tensor_batches(train, 200, shuffle=False), steps_per_epoch=7, cfg=cfg,
                 class_counts=[100, 100], device="cpu")
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_warmup_then_cosine():
    f = warmup_cosine(100, 0.1)
    assert f(0) == 0.1 and f(9) == 1.0 and abs(f(10) - 1.0) < 1e-9 and f(99) < 0.01


def test_expert_checkpoint_reloads_to_identical_logits(tmp_path):
    torch.manual_seed(0)
    encoder = FTTransformerEncoder(config=FTConfig(n_numeric=3, cardinalities=[4, 5], d_block=16, n_blocks=1,
                                                   attention_n_heads=2))
    expert = Expert(modality="tabular", encoder=encoder, n_classes=2, head_hidden=8, dropout=0.1).eval()
    batch = {"x_num": torch.randn(5, 3), "missing": torch.zeros(5, 3), "x_cat": torch.randint(0, 4, (5, 2))}
    save_expert(expert, tmp_path / "tab", classes=["a", "b"], extra={})
    loaded, info = load_expert(tmp_path / "tab")
    assert info["modality"] == "tabular"
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), expert(batch), rtol=0, atol=0)
        assert loaded.forward_features(batch).shape == (5, 16)
