"""The whole DAG end to end on the tiny profile: every output is built, a second `dvc repro` does nothing, the
metrics are quality only and agree with the saved predictions, a second build from scratch gives the same metrics
byte for byte, and the example data's broken files are listed. The builds are the session's `tiny_dag_builds`."""
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e

MODELS = {"text_expert", "vision_expert", "tabular_expert", "temporal_expert", "fusion_concat", "fusion_gated",
          "fusion_transformer", "fusion_late", "fusion_align", "fusion_cross"}


def test_whole_dag_builds_and_second_repro_does_nothing(tiny_dag):
    target, result = tiny_dag.path, tiny_dag.result
    for path in ["data/prepared/records.jsonl", "data/manifest.jsonl", "data/ocr.jsonl", "data/label_taxonomy.json",
                 "data/splits.json", "data/shards/meta.json", "models/text_expert/model.safetensors",
                 "metrics/evaluation.json", "reports/evaluation.html", "models/calibration.json",
                 "models/vision_expert/expert.json", "models/tabular_mfm/encoder.safetensors",
                 "models/tabular_expert/model.safetensors", "data/embeddings/vision/test_unseen.safetensors",
                 "models/mm_fusion/gated/fusion.json", "metrics/comparison.json", "metrics/unfamiliar.json"]:
        assert (target / path).exists(), path
    assert list((target / "data/shards/train").glob("*.tar"))
    comparison = json.loads((target / "metrics/comparison.json").read_text())
    assert set(comparison["models"]) == MODELS
    for scores in comparison["models"].values():
        assert all(np.isfinite(v) for split in ("val", "test_seen") for v in scores[split].values())
    gated = json.loads((target / "metrics/fusion_gated.json").read_text())
    facts = json.loads((target / "reports/fusion_gated.json").read_text())
    assert abs(sum(facts["gates"]["test_seen"]["all"].values()) - 1) < 1e-3
    assert facts["seeds"] == [0, 1] and set(facts["per_seed"]) == {"0", "1"}  # the smoke profile's two seeds
    assert "test_unseen" in gated["vs_true_label"]
    unfamiliar = json.loads((target / "metrics/unfamiliar.json").read_text())
    assert set(unfamiliar["methods"]) == {"concat", "gated", "transformer", "late", "align", "cross"}
    assert result["second_run_stages"] == [], result["second_run_output"]  # strictly nothing reran
    assert result["status_after"] == {}  # and `dvc status` reports every stage up to date


def test_fusion_metrics_are_its_seeds_scores_on_the_saved_predictions(tiny_dag):
    """metrics/fusion_gated.json's test_seen AUROC and its std are the mean and sample std of the two seeds'
    AUROCs, and its ensemble AUROC is what sklearn gives on the saved (seed ensemble) test_seen predictions."""
    from sklearn.metrics import roc_auc_score

    from Step_4.features.tensors import load_embeddings
    from Step_5.data import load_predictions

    target = tiny_dag.path
    metrics = json.loads((target / "metrics/fusion_gated.json").read_text())
    reported = metrics["test_seen"]
    per_seed = json.loads((target / "reports/fusion_gated.json").read_text())["per_seed"]
    aurocs = [per_seed[seed]["test_seen"]["auroc"] for seed in ("0", "1")]
    assert reported["auroc"] == pytest.approx(np.mean(aurocs), abs=1e-4)
    assert reported["auroc_std"] == pytest.approx(np.std(aurocs, ddof=1), abs=1e-4)
    saved = load_predictions(target / "models/mm_fusion/gated/predictions.safetensors")["test_seen"]
    truth = load_embeddings(target / "data/embeddings/text/test_seen.safetensors")
    label_of = dict(zip(truth["ids"], truth["labels"].tolist()))
    labels = np.array([label_of[i] for i in saved["ids"]])
    positive = json.loads((target / "data/shards/meta.json").read_text())["positive_index"]
    keep = labels >= 0
    expected = roc_auc_score(labels[keep] == positive, saved["log_probs"].numpy()[keep, positive])
    assert metrics["ensemble"]["test_seen"]["auroc"] == pytest.approx(expected, abs=1e-4)


def test_metrics_files_hold_quality_only(tiny_dag):
    """No timings, counters, seeds or params in metrics/*.json (they go to reports/), so that `dvc metrics diff`
    and `dvc exp show` compare quality."""
    target = tiny_dag.path
    not_quality = ("per_s", "seconds", "images", "epoch", "rows", "count", "samples", "params", "gates", "throughput",
                   "training", "rejected", "empty_text")

    def keys(node):
        for key, value in node.items():
            yield key
            if isinstance(value, dict):
                yield from keys(value)

    for path in (target / "metrics").glob("*.json"):
        found = [k for k in keys(json.loads(path.read_text()))
                 if k in ("n", "seeds", "per_seed") or any(w in k for w in not_quality)]
        assert not found, (path.name, found)
    assert json.loads((target / "reports/ocr.json").read_text())["images"] > 0
    assert json.loads((target / "reports/text_expert.json").read_text())["samples"]["test_seen"] > 0


def test_a_second_build_from_scratch_gives_the_same_metrics(tiny_dag_builds):
    """What an unchanged clone's `dvc metrics diff` compares: on the same machine, a fresh build of the same
    code and params gives the same metrics, file for file and as `dvc metrics show` reads them."""
    from tools.smoke import dvc

    first, second = tiny_dag_builds["first"].path, tiny_dag_builds["second"]
    assert second.result["second_run_stages"] == [] and second.result["status_after"] == {}
    shown = [json.loads(dvc(root, "metrics", "show", "--json").stdout) for root in (first, second.path)]
    assert shown[0] == shown[1] and shown[0]
    for path in sorted((first / "metrics").rglob("*.json")):
        assert path.read_bytes() == (second.path / path.relative_to(first)).read_bytes(), path.relative_to(first)


def test_own_data_with_broken_files_goes_through(tiny_dag):
    """The example Hateful-Memes folder and CSV export import beside the synthetic source;
    their broken files are listed with reasons and the official HM splits are kept."""
    target = tiny_dag.path
    rejected = json.loads((target / "data/rejected.json").read_text())
    reasons = {Path(r["image"]).name: r["reason"] for r in rejected}
    assert "empty" in reasons["10024.png"] and "truncated" in reasons["10025.png"]
    assert "not an image" in reasons["10026.png"] and "truncated" in reasons["post_truncated.jpg"]
    assert "escapes the dataset root" in reasons["outside.jpg"]
    meta = json.loads((target / "data/shards/meta.json").read_text())
    assert meta["sources"] == ["csv_example", "hm_example", "synthetic"]
    splits = json.loads((target / "data/splits.json").read_text())["ids"]
    assert all(f"hm_example-{10016 + i}" in splits["test_unseen"] for i in range(8))  # test_unseen.jsonl
    assert meta["counts"]["test_unseen"].get("unlabelled", 0) == 8
    ocr = json.loads((target / "reports/ocr.json").read_text())
    assert ocr["rejected"] == 5
