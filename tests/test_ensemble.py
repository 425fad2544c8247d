"""The seed ensemble: the deployed model averages its seed heads' probabilities, is saved and loaded whole, and
its metrics and verdicts are reported beside the per-seed mean ± std."""
import numpy as np
import pytest
import torch

from Step_4.scores import ensemble_probs, summarize
from Step_5.ensemble import GatedSeedEnsemble, SeedEnsemble, load_fusion_head, seed_ensemble
from Step_5.models import FusionDims, create_fusion
from Step_5.studies.compare import ensemble_contrast
from Step_5.train_fusion import save_fusion

DIMS = FusionDims(inputs={"text": 6, "vision": 5}, n_classes=2)
PARAMS = {"concat": {"hidden": 8, "dropout": 0.0},
          "gated": {"d_fusion": 8, "router_hidden": 4, "temperature": 1.0, "dropout": 0.0, "balance_weight": 0.0}}
META = {"classes": ["benign", "abuse_hate"], "positive_index": 1}


def batch(rows=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {m: torch.randn(rows, d, generator=g) for m, d in DIMS.inputs.items()}
    out.update({f"{m}_logits": torch.randn(rows, 2, generator=g) for m in DIMS.inputs})
    out["mask"] = torch.ones(rows, 2, dtype=torch.bool)
    return out


def heads(method, seeds=(0, 1, 2)):
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        out.append(create_fusion(method, DIMS, PARAMS[method]).eval())
    return out


def test_ensemble_probability_is_the_mean_of_its_members():
    members = heads("concat")
    ensemble = seed_ensemble(members).eval()
    x = batch()
    with torch.no_grad():
        expected = torch.stack([torch.softmax(m(x), -1) for m in members]).mean(0)
        got = torch.softmax(ensemble(x), -1)
    assert isinstance(ensemble, SeedEnsemble)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, torch.softmax(members[0](x), -1), atol=1e-3)  # the members do differ


def test_gated_ensemble_averages_the_gate_weights_and_one_seed_stays_a_plain_head():
    members = heads("gated")
    ensemble = seed_ensemble(members)
    x = batch()
    with torch.no_grad():
        expected = torch.stack([m.gates(x)[0] for m in members]).mean(0)
        assert isinstance(ensemble, GatedSeedEnsemble) and torch.allclose(ensemble.gates(x)[0], expected)
    assert seed_ensemble(members[:1]) is members[0]


@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2)])
def test_saved_ensemble_loads_back_with_the_same_predictions(tmp_path, seeds):
    members = heads("gated", seeds)
    model = seed_ensemble(members)
    save_fusion(model, tmp_path / "gated", method="gated", params=PARAMS["gated"], dims=DIMS, meta=META,
                modalities=list(DIMS.inputs), experts_dir="models", ocr_settings={}, seeds=list(seeds),
                predictions={"val": np.full((2, 2), 0.5)}, ids={"val": ["a", "b"]})
    loaded, info = load_fusion_head(tmp_path / "gated")
    x = batch()
    assert info["seeds"] == list(seeds)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert len(getattr(loaded, "members", [loaded])) == len(seeds)


def test_summary_reports_the_ensemble_of_the_averaged_probabilities():
    labels = np.array([0, 0, 1, 1])
    runs = [{"test_unseen": np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])},   # ranks row 1 over row 2
            {"test_unseen": np.array([[0.6, 0.4], [0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])}]  # perfect
    report = summarize(runs, {"test_unseen": {"labels": labels, "true_labels": labels}}, positive=1, seeds=[0, 1])
    averaged = ensemble_probs(runs)["test_unseen"]
    assert np.allclose(averaged[:, 1], [0.25, 0.45, 0.5, 0.75])
    assert "seeds" not in report["ensemble"]  # a count: reports/, not metrics/
    assert report["ensemble"]["test_unseen"]["auroc"] == 1.0  # better than the mean of its seeds
    assert report["test_unseen"]["auroc"] == 0.875


def test_ensemble_noise_shrinks_with_the_number_of_seeds():
    def row(auroc, std):
        return {"test_unseen": {"auroc": 0.0, "auroc_std": std}, "ensemble": {"test_unseen": {"auroc": auroc}}}

    three = ensemble_contrast(row(0.72, 0.02), row(0.68, 0.02), "test_unseen", "auroc", seeds=3)
    one = ensemble_contrast(row(0.72, 0.02), row(0.68, 0.02), "test_unseen", "auroc", seeds=1)
    assert three["diff"] == 0.04 and three["seed_noise"] == round(2 * np.sqrt(2 * 0.02 ** 2 / 3), 4)
    assert three["beyond_noise"] and not one["beyond_noise"]
