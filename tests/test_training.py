"""The engine: training, early stopping with patience, best-epoch restore, divergence, saved experts."""
import pytest
import torch

from core.errors import PipelineError
from Step_4.config import TrainConfig
from Step_4.engine import Objective, classification, fit, predict, warmup_cosine
from Step_4.expert import Expert, save_expert
from Step_4.features.tensors import tensor_batches
from Step_4.registry import load_expert
from Step_4.tabular.model import FTConfig
from Step_4.tabular.plugin import TabularFeatureEncoder
from Step_4.weights import average_states, keep_best, trainable_state


def separable(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return {"features": x, "label": (x[:, 0] + 0.5 * x[:, 1] > 0).long()}


class Head(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.out_dim = 8
        self.frozen = torch.nn.Linear(8, 8).requires_grad_(False)
        self.net = torch.nn.Linear(8, 2)

    def forward(self, batch):
        return self.net(batch["features"] + 0 * self.frozen(batch["features"]))


def train_on(train, cfg, model, val=None, **kw):
    val = val or train
    objective = kw.pop("objective", None) or classification(
        cfg, [100, 100], lambda: tensor_batches(val, 100, shuffle=False), positive=1, device="cpu")
    return fit(model, objective, train_batches=lambda e: tensor_batches(train, 32, shuffle=True, epoch=e),
               steps_per_epoch=7, cfg=cfg, device="cpu", **kw)


def test_loop_drives_loss_down_and_picks_the_best_epoch():
    torch.manual_seed(0)
    model = Head()
    cfg = TrainConfig(epochs=15, batch_size=32, lr=0.05, patience=15, early_stop_metric="macro_f1")
    result = train_on(separable(), cfg, model, val=separable(seed=1))
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    labels, probs = predict(model, tensor_batches(separable(seed=1), 100, shuffle=False), "cpu")
    assert (probs.argmax(1) == labels).mean() > 0.9
    assert result.best_score == max(h["val_macro_f1"] for h in result.history)


def test_patience_stops_at_the_right_epoch_and_restores_the_best_weights():
    torch.manual_seed(0)
    model = Head()
    scores = iter([0.5, 0.8, 0.6, 0.7, 0.95, 0.99])  # best at epoch 2, then two epochs without improvement
    snapshots = []

    def evaluate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"auroc": next(scores)}

    base = classification(TrainConfig(), [100, 100], lambda: [], positive=1, device="cpu")
    cfg = TrainConfig(epochs=6, batch_size=32, lr=0.05, patience=2)
    result = train_on(separable(), cfg, model, objective=Objective(loss=base.loss, evaluate=evaluate, score="auroc"))
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4] and result.best_epoch == 2
    assert result.best_score == 0.8
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][name], rtol=0, atol=0)
    assert not torch.equal(snapshots[1]["net.weight"], snapshots[3]["net.weight"])


def test_average_best_restores_the_mean_of_the_best_epochs_weights():
    torch.manual_seed(0)
    model = Head()
    scores = iter([0.5, 0.8, 0.6, 0.9, 0.7, 0.1])  # the three best: epochs 4, 2, 5
    snapshots = []

    def evaluate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"auroc": next(scores)}

    base = classification(TrainConfig(), [100, 100], lambda: [], positive=1, device="cpu")
    cfg = TrainConfig(epochs=6, batch_size=32, lr=0.05, patience=6, average_best=3)
    result = train_on(separable(), cfg, model, objective=Objective(loss=base.loss, evaluate=evaluate, score="auroc"))
    assert result.best_epoch == 4 and result.best_score == 0.9
    for name, value in model.state_dict().items():
        expected = (snapshots[3][name].double() + snapshots[1][name].double() + snapshots[4][name].double()) / 3
        torch.testing.assert_close(value, expected.float(), rtol=0, atol=1e-7)


def test_keep_best_holds_the_best_scores_and_prefers_earlier_epochs_on_ties():
    kept = []
    for epoch, score in enumerate([0.3, 0.7, 0.7, 0.5, 0.9], start=1):
        kept = keep_best(kept, (score, epoch, Head()), 3)
    assert [(s, e) for s, e, _ in kept] == [(0.9, 5), (0.7, 2), (0.7, 3)]
    a, b = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)}, {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    mean = average_states([a, b])
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0])) and int(mean["n"]) == 4


def test_best_epoch_snapshot_holds_trainable_weights_only():
    state = trainable_state(Head())
    assert set(state) == {"net.weight", "net.bias"}


def test_lower_is_better_objective_keeps_the_lowest_score():
    torch.manual_seed(0)
    losses = iter([3.0, 1.0, 2.0])
    objective = Objective(loss=lambda m, b: torch.nn.functional.cross_entropy(m(b), b["label"]),
                          evaluate=lambda m: {"loss": next(losses)}, score="loss", higher_is_better=False)
    result = train_on(separable(), TrainConfig(epochs=3, patience=3), Head(), objective=objective)
    assert result.best_epoch == 2 and result.best_score == 1.0


def test_divergence_is_a_clear_error():
    class Exploding(Head):
        def forward(self, batch):
            return super().forward(batch) * float("nan")

    with pytest.raises(PipelineError, match="diverged"):
        train_on(separable(), TrainConfig(epochs=2), Exploding())


def test_focal_loss_trains_too():
    torch.manual_seed(0)
    result = train_on(separable(), TrainConfig(epochs=5, batch_size=32, lr=0.05, loss="focal"), Head())
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_warmup_then_cosine():
    f = warmup_cosine(100, 0.1)
    assert f(0) == 0.1 and f(9) == 1.0 and abs(f(10) - 1.0) < 1e-9 and f(99) < 0.01


def test_expert_checkpoint_reloads_to_identical_logits(tmp_path):
    torch.manual_seed(0)
    encoder = TabularFeatureEncoder(config=FTConfig(n_numeric=3, cardinalities=[4, 5], d_block=16, n_blocks=1,
                                                    attention_n_heads=2))
    expert = Expert(modality="tabular", encoder=encoder, n_classes=2, head_hidden=8, dropout=0.1).eval()
    batch = {"x_num": torch.randn(5, 3), "missing": torch.zeros(5, 3), "x_cat": torch.randint(0, 4, (5, 2))}
    save_expert(expert, tmp_path / "tab", classes=["a", "b"], extra={})
    loaded, info = load_expert(tmp_path / "tab")
    assert info["modality"] == "tabular"
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), expert(batch), rtol=0, atol=0)
        assert loaded.forward_features(batch).shape == (5, 16)


def test_determinism_param_is_strict_on_the_cpu_and_fast_only_on_cuda():
    from core.seed import set_determinism

    try:
        set_determinism("fast", "cpu")
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
        set_determinism("fast", "cuda:0")  # flags only: no GPU needed to check what the mode sets
        assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark
        set_determinism("strict", "cuda:0")
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    finally:
        set_determinism("strict", "cpu")
    runs = []
    for mode in ("strict", "fast"):  # on the CPU both give the very same weights
        torch.manual_seed(0)
        model = Head()
        train_on(separable(), TrainConfig(epochs=3, determinism=mode), model)
        runs.append(model.net.weight.detach().clone())
    assert torch.equal(*runs)


def test_bf16_training_precision_autocasts_and_still_learns():
    runs = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = Head()
        result = train_on(separable(), TrainConfig(epochs=4, lr=0.05, precision=precision), model)
        runs[precision] = (result.best_score, model.net.weight.detach().clone())
        assert model.net.weight.dtype == torch.float32  # weights and optimizer stay fp32
    assert runs["bf16"][0] > 0.9 and not torch.equal(runs["fp32"][1], runs["bf16"][1])


def test_weighted_bce_and_focal_alpha_losses():
    """weighted_bce: BCE on the positive logit margin (sigmoid(margin) = the softmax probability) with pos_weight =
    negatives / positives of the train split; focal_alpha weighs the positive class alpha, the other 1 - alpha."""
    import pytest
    import torch.nn.functional as F

    from core.errors import PipelineError
    from Step_4.config import TrainConfig
    from Step_4.engine import classification_loss, loss_weights

    logits = torch.tensor([[0.2, 1.0], [1.5, -0.5], [0.0, 0.3]])
    labels = torch.tensor([1, 0, 0])
    cfg = TrainConfig(loss="weighted_bce")
    weights, pos_weight = loss_weights(cfg, [300, 100], positive=1)
    assert weights is None and pos_weight.item() == 3.0
    margin = logits[:, 1] - logits[:, 0]
    assert torch.allclose(torch.sigmoid(margin), logits.softmax(-1)[:, 1])
    expected = -(3.0 * torch.log(torch.sigmoid(margin[0])) + torch.log(1 - torch.sigmoid(margin[1]))
                 + torch.log(1 - torch.sigmoid(margin[2]))) / 3
    assert torch.allclose(classification_loss(logits, labels, cfg, weights, 1, pos_weight), expected)
    # positive index 0: the margin flips
    _, pos0 = loss_weights(cfg, [100, 300], positive=0)
    assert pos0.item() == 3.0
    flipped = logits[:, 0] - logits[:, 1]
    expected0 = -(torch.log(1 - torch.sigmoid(flipped[0])) + 3.0 * torch.log(torch.sigmoid(flipped[1]))
                  + 3.0 * torch.log(torch.sigmoid(flipped[2]))) / 3
    assert torch.allclose(classification_loss(logits, labels, cfg, None, 0, pos0), expected0)
    focal = TrainConfig(loss="focal", focal_alpha=0.75, focal_gamma=0.0)
    weights, _ = loss_weights(focal, [300, 100], positive=1)
    assert weights.tolist() == [0.25, 0.75]
    plain = F.cross_entropy(logits, labels, reduction="none")
    assert torch.allclose(classification_loss(logits, labels, focal, weights), (plain * weights[labels]).mean())
    with pytest.raises(PipelineError, match="needs two classes"):
        loss_weights(cfg, [10, 10, 10], positive=1)
    with pytest.raises(Exception, match="focal_alpha"):
        TrainConfig(loss="focal", focal_alpha=1.5)


def test_adamw_is_fused_on_cuda_only_and_training_tensors_stay_put_on_the_cpu(monkeypatch):
    from Step_4.engine import adamw
    from Step_4.features import tensors as embeddings

    params = [torch.nn.Parameter(torch.zeros(3))]
    assert adamw([{"params": params}], TrainConfig(), "cuda").defaults["fused"] is True
    assert not adamw([{"params": params}], TrainConfig(), "cpu").defaults["fused"]
    data = separable(10)
    assert embeddings.resident(data, "cpu") is data
    monkeypatch.setattr(embeddings, "RESIDENT_BYTES", 0)  # too large for the device: batches are copied per step
    assert embeddings.resident(data, "cuda") is data
