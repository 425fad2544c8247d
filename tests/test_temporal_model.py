"""The engagement-series encoders: shapes, and missing hours (or a missing series) never reach the output."""
import pytest
import torch

from Step_4.temporal.model import create_series_encoder, masked_pool

T, C = 72, 5


def batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    series = torch.randn(4, T, C, generator=gen)
    observed = torch.rand(4, T, generator=gen) > 0.2
    observed[2] = False  # a meme without a series
    return series, observed


@pytest.mark.parametrize("architecture", ["cnn", "transformer"])
def test_shapes_and_missing_hours_change_nothing_but_the_mask(architecture):
    torch.manual_seed(0)
    encoder = create_series_encoder(architecture, channels=C, steps=T, out_dim=32).eval()
    series, observed = batch()
    out = encoder(series, observed)
    assert out.shape == (4, 32) and torch.isfinite(out).all()
    noisy = series.clone()
    noisy[~observed] = torch.randn(int((~observed).sum()), C) * 100  # garbage where hours are missing
    assert torch.allclose(encoder(noisy, observed), out, atol=1e-5)
    # a meme without a series: the same vector whatever its values
    other = series.clone()
    other[2] = torch.randn(T, C)
    assert torch.allclose(encoder(other, observed)[2], out[2], atol=1e-5)
    # an observed hour does count
    moved = series.clone()
    hour = int(observed[0].nonzero()[0])
    moved[0, hour] += 5.0
    assert not torch.allclose(encoder(moved, observed)[0], out[0], atol=1e-4)


@pytest.mark.parametrize("architecture", ["cnn", "transformer"])
def test_encoders_train(architecture):
    torch.manual_seed(0)
    encoder = create_series_encoder(architecture, channels=C, steps=T, out_dim=16)
    head = torch.nn.Linear(16, 2)
    series, observed = batch(1)
    labels = torch.tensor([0, 1, 0, 1])
    series[labels == 1, :, 1] += 2.0  # a signal in one channel
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-2)
    first = None
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(head(encoder(series, observed)), labels)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 2


def test_pooling_ignores_unobserved_steps_and_bad_settings_are_clear():
    x = torch.tensor([[[1.0], [100.0], [3.0]]])
    observed = torch.tensor([[True, False, True]])
    assert masked_pool(x, observed).tolist() == [[2.0, 3.0]]
    assert masked_pool(x, torch.zeros_like(observed)).tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError, match="built for 72"):
        create_series_encoder("transformer", channels=C, steps=72)(torch.zeros(1, 10, C), torch.ones(1, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="cnn or transformer"):
        create_series_encoder("lstm", channels=C, steps=T)
    with pytest.raises(ValueError, match="odd"):
        create_series_encoder("cnn", channels=C, steps=T, kernel=4)
