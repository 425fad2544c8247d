import pytest
import torch

from Step_5.data import drop_modalities
from Step_5.models import FUSIONS, FusionDims, GatedFusion, create_fusion

DIMS = FusionDims(inputs={"text": 12, "vision": 20, "tabular": 6}, n_classes=2)
PARAMS = {"concat": {"hidden": 16}, "gated": {"d_fusion": 16, "router_hidden": 8, "balance_weight": 0.1},
          "transformer": {"d_model": 16, "n_heads": 2, "n_layers": 1}, "late": {}}


def batch(b=6, seed=0, mask=None):
    g = torch.Generator().manual_seed(seed)
    out = {m: torch.randn(b, d, generator=g) for m, d in DIMS.inputs.items()}
    out.update({f"{m}_logits": torch.randn(b, 2, generator=g) for m in DIMS.inputs})
    out["mask"] = torch.ones(b, 3, dtype=torch.bool) if mask is None else mask
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
    mask = torch.tensor([[True, True, False], [False, True, True], [False, True, False], [False, False, False]])
    a, b = batch(4, seed=1, mask=mask), batch(4, seed=2, mask=mask)
    for i, m in enumerate(("text", "vision", "tabular")):  # present values equal, absent values differ
        keep = mask[:, i:i + 1]
        b[m] = torch.where(keep, a[m], b[m])
        b[f"{m}_logits"] = torch.where(keep, a[f"{m}_logits"], b[f"{m}_logits"])
    with torch.no_grad():
        out_a, out_b = model(a), model(b)
    assert torch.isfinite(out_a).all()
    torch.testing.assert_close(out_a, out_b)


def test_gate_weights_sum_to_one_and_skip_absent_experts():
    model = GatedFusion(dims=DIMS, d_fusion=16, router_hidden=8, temperature=0.5).eval()
    mask = torch.tensor([[True, True, True], [True, True, False], [False, True, False]])
    weights, _ = model.gates(batch(3, mask=mask))
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    assert (weights[~mask] == 0).all()


def test_modality_dropout_keeps_at_least_one():
    mask = torch.ones(500, 3, dtype=torch.bool)
    mask[:, 2] = False
    dropped = drop_modalities(mask, 0.9, torch.Generator().manual_seed(0))
    assert dropped.any(1).all() and not (dropped & ~mask).any()
    assert 0.05 < (~dropped[:, :2]).float().mean() < 0.95
