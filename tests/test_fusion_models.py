import pytest
import torch

from Step_5.data import drop_modalities
from Step_5.models import FUSIONS, FusionDims, GatedFusion, create_fusion

DIMS = FusionDims(inputs={"text": 12, "vision": 20, "tabular": 6, "temporal": 8}, n_classes=2)
PARAMS = {"concat": {"hidden": 16}, "gated": {"d_fusion": 16, "router_hidden": 8, "balance_weight": 0.1},
          "transformer": {"d_model": 16, "n_heads": 2, "n_layers": 1}, "late": {},
          "align": {"d_align": 8, "hidden": 16}, "cross": {"d_cross": 8, "rank": 3, "out_features": 10, "hidden": 16}}


def batch(b=6, seed=0, mask=None):
    g = torch.Generator().manual_seed(seed)
    out = {m: torch.randn(b, d, generator=g) for m, d in DIMS.inputs.items()}
    out.update({f"{m}_logits": torch.randn(b, 2, generator=g) for m in DIMS.inputs})
    out["mask"] = torch.ones(b, 4, dtype=torch.bool) if mask is None else mask
    out["label"] = torch.arange(b) % 2
    return out


@pytest.mark.parametrize("method", sorted(FUSIONS))
def test_forward_backward_finite(method):
    torch.manual_seed(0)
    model = create_fusion(method, DIMS, PARAMS[method])
    logits = model(batch())
    assert logits.shape == (6, 2) and torch.isfinite(logits).all()
    params = [p for p in model.parameters() if p.requires_grad]
    if params:
        loss = torch.nn.functional.cross_entropy(logits, batch()["label"])
        if hasattr(model, "auxiliary_loss"):
            loss = loss + model.auxiliary_loss()
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)


@pytest.mark.parametrize("method", sorted(FUSIONS))
def test_masked_modality_values_do_not_matter(method):
    torch.manual_seed(0)
    model = create_fusion(method, DIMS, PARAMS[method]).eval()
    mask = torch.tensor([[True, True, False, True], [False, True, True, False], [False, True, False, False],
                         [False, False, False, False], [True, True, True, False]])
    a, b = batch(5, seed=1, mask=mask), batch(5, seed=2, mask=mask)
    for i, m in enumerate(("text", "vision", "tabular", "temporal")):  # present values equal, absent values differ
        keep = mask[:, i:i + 1]
        b[m] = torch.where(keep, a[m], b[m])
        b[f"{m}_logits"] = torch.where(keep, a[f"{m}_logits"], b[f"{m}_logits"])
    with torch.no_grad():
        out_a, out_b = model(a), model(b)
    assert torch.isfinite(out_a).all()
    torch.testing.assert_close(out_a, out_b)


def test_gate_weights_sum_to_one_and_skip_absent_experts():
    model = GatedFusion(dims=DIMS, d_fusion=16, router_hidden=8, temperature=0.5).eval()
    mask = torch.tensor([[True, True, True, True], [True, True, False, True], [False, True, False, False],
                         [True, True, True, False]])
    weights, _ = model.gates(batch(4, mask=mask))
    torch.testing.assert_close(weights.sum(1), torch.ones(4))
    assert (weights[~mask] == 0).all()


def test_modality_dropout_keeps_at_least_one():
    mask = torch.ones(500, 3, dtype=torch.bool)
    mask[:, 2] = False
    dropped = drop_modalities(mask, 0.9, torch.Generator().manual_seed(0))
    assert dropped.any(1).all() and not (dropped & ~mask).any()
    assert 0.05 < (~dropped[:, :2]).float().mean() < 0.95


def test_low_rank_cross_equals_the_outer_product_read_by_a_rank_limited_weight():
    """out_j = z_a^T W_j z_b with W_j = sum_k u_jk v_jk^T, computed without the (B, d, d) outer product."""
    torch.manual_seed(0)
    model = create_fusion("cross", DIMS, {"d_cross": 8, "rank": 3, "out_features": 10}).eval()
    za, zb = torch.randn(4, 8), torch.randn(4, 8)
    u = model.u.weight.view(10, 3, 8)  # (out, rank, d)
    v = model.v.weight.view(10, 3, 8)
    weight = torch.einsum("jki,jkl->jil", u, v)  # (out, d, d)
    explicit = torch.einsum("bi,jil,bl->bj", za, weight, zb)
    torch.testing.assert_close(model.interaction(za, zb), explicit, rtol=1e-5, atol=1e-5)
    full = create_fusion("cross", DIMS, {"d_cross": 8, "rank": 0, "out_features": 10})
    assert full.interaction(za, zb).shape == (4, 10) and full.full.in_features == 64
    with pytest.raises(Exception, match="pair must name two different fused modalities"):
        create_fusion("align", DIMS, {"pair": ["text", "text"]})


def test_align_is_the_product_of_the_paired_projections():
    torch.manual_seed(0)
    model = create_fusion("align", DIMS, {"d_align": 8, "hidden": 16, "dropout": 0.0}).eval()
    b = batch()
    z = model.space(b)
    assert torch.allclose(z["text"].norm(dim=-1), torch.ones(6))  # L2-normalised shared space
    first = model.head[0]
    captured = {}
    first.register_forward_hook(lambda mod, inp, out: captured.update(x=inp[0]))
    model(b)
    torch.testing.assert_close(captured["x"][:, :8], z["text"] * z["vision"])


def test_epoch_dropout_draws_are_the_per_batch_draws():
    """dropout_batches draws an epoch's modality dropout at once (one copy to a GPU): the same masks as
    drawing per batch, so the CPU's results do not move."""
    from Step_4.features.tensors import tensor_batches
    from Step_5.data import dropout_batches

    train = batch(203, seed=3)
    train["mask"][::5, 1] = False
    got = list(dropout_batches(train, 16, 0.4, seed=2, epoch=1))
    gen = torch.Generator().manual_seed(2 * 7919 + 1)
    expected = [drop_modalities(b["mask"], 0.4, gen) for b in tensor_batches(train, 16, shuffle=True, seed=2, epoch=1)]
    assert len(got) == len(expected) == 13
    assert all(torch.equal(g["mask"], e) for g, e in zip(got, expected))
    assert any(not torch.equal(g["mask"], b["mask"])
               for g, b in zip(got, tensor_batches(train, 16, shuffle=True, seed=2, epoch=1)))
