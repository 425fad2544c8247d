"""The tiny DAG's evaluation (its outputs, a rerun on the same caches, the HTML report in a browser) and the
experts' finetune mode trained from the build's real shards."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.e2e

MODELS = {"text_expert", "vision_expert", "tabular_expert", "temporal_expert", "fusion_concat", "fusion_gated",
          "fusion_transformer", "fusion_late", "fusion_align", "fusion_cross"}


def test_evaluate_outputs_and_a_second_run_reuses_every_cache(tiny_dag, tmp_path):
    target = tiny_dag.path
    metrics = json.loads((target / "metrics/evaluation.json").read_text())
    report = json.loads((target / "reports/evaluation.json").read_text())
    assert set(metrics["calibration"]) == MODELS and set(metrics["robustness"]) == MODELS
    for name in MODELS:
        assert set(metrics["calibration"][name]) == set(report["splits"]) == {"val", "val_unseen", "test_seen", "test_unseen"}
        assert {"ece_before", "ece_after", "ece_adaptive_before", "brier_after", "nll_after"} <= set(
            metrics["calibration"][name]["test_seen"])
        assert set(report["operating_points"][name]) == {"max_f1", "max_f1_unseen", "precision_90", "recall_90"}
        assert set(metrics["robustness"][name]) == {"clean", "jpeg", "border", "ocr_noise", "missing_vision"}
    assert "test_seen" not in metrics["robustness"]["vision_expert"]["missing_vision"]  # no input, no score
    run = json.loads((target / "reports/evaluation_run.json").read_text())["caches"]
    assert run["images_made"] > 0 and run["ocr_read"] > 0
    calibration = json.loads((target / "models/calibration.json").read_text())
    assert calibration["models"]["fusion_gated"]["temperature"] > 0
    # the same stage again on the same caches: no image corrupted, no OCR run, the same metrics
    out = subprocess.run([sys.executable, "-m", "Step_6.evaluate", "--metrics", str(tmp_path / "m.json"),
                          "--report", str(tmp_path / "r.json"), "--run-report", str(tmp_path / "run.json"),
                          "--calibration", str(tmp_path / "c.json"), "--plots", str(tmp_path / "plots")],
                         cwd=target, capture_output=True, text=True, env=tiny_dag.env())
    assert out.returncode == 0, out.stderr[-3000:]
    again = json.loads((tmp_path / "run.json").read_text())["caches"]
    assert again["images_made"] == 0 and again["ocr_read"] == 0 and again["features_encoded"]["vision"] == 0
    assert (tmp_path / "m.json").read_bytes() == (target / "metrics/evaluation.json").read_bytes()
    assert (tmp_path / "r.json").read_bytes() == (target / "reports/evaluation.json").read_bytes()


def seed_auroc(embeddings: dict, positive: int) -> float:
    """AUROC of the saved logits' positive-class probability over the labelled rows of one split's embeddings."""
    from sklearn.metrics import roc_auc_score

    keep = embeddings["labels"] >= 0
    scores = torch.softmax(embeddings["logits"].float(), dim=-1)[keep, positive]
    return float(roc_auc_score((embeddings["labels"][keep] == positive).numpy(), scores.numpy()))


@pytest.mark.parametrize("modality,extra", [("text", {"trainable_layers": 1, "max_length": 24}),
                                            ("vision", {"trainable_blocks": 1, "embed_batch_size": 16})])
def test_expert_finetune_mode_on_real_shards(tiny_dag, tmp_path, modality, extra):
    """mode: finetune trains the encoder's top layers from the shards (the lower ones keep the pretrained
    weights), caches embeddings that differ from the frozen build's, and reports the AUROC of the saved
    predictions: the first seed's is sklearn's on the cached test_seen logits, the metric the seeds' mean."""
    import yaml

    from Step_4.features.tensors import load_embeddings
    from Step_4.registry import load_expert

    target = tiny_dag.path
    params = yaml.safe_load((target / "params.yaml").read_text())
    section = params[f"{modality}_expert"]
    section.update({"mode": "finetune", **extra})
    section["train"].update({"epochs": 1, "batch_size": 16})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    command = [sys.executable, "-m", "Step_4.train_expert", modality, "--params", "params.yaml",
               "--shards", str(target / "data/shards"), "--model", "model", "--embeddings", "emb",
               "--metrics-dir", "metrics", "--reports-dir", "reports"]
    # the build's code run in tmp_path: the build itself stays as built (dvclive/ is written here)
    out = subprocess.run(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "metrics" / f"{modality}_expert.json").read_text())
    facts = json.loads((tmp_path / "reports" / f"{modality}_expert.json").read_text())
    assert facts["training"]["epochs_run"] == 1
    emb = load_embeddings(tmp_path / "emb" / "test_seen.safetensors")
    frozen = load_embeddings(target / f"data/embeddings/{modality}/test_seen.safetensors")
    assert emb["features"].shape[0] == len(emb["ids"]) and emb["ids"] == frozen["ids"]
    assert not torch.equal(emb["features"], frozen["features"])
    positive = json.loads((target / "data/shards/meta.json").read_text())["positive_index"]
    aurocs = [facts["per_seed"][str(seed)]["test_seen"]["auroc"] for seed in section["train"]["seeds"]]
    assert aurocs[0] == pytest.approx(seed_auroc(emb, positive), abs=1e-4)
    assert report["test_seen"]["auroc"] == pytest.approx(np.mean(aurocs), abs=1e-4)
    expert, _ = load_expert(tmp_path / "model")
    tuned = dict(expert.encoder.named_parameters())
    original, _ = load_expert(target / f"models/{modality}_expert")  # frozen-mode expert: pretrained encoder
    same = [n for n, p in original.encoder.named_parameters() if torch.equal(p, tuned[n])]
    assert same and len(same) < len(tuned), "lower layers stay frozen, top layers change"


def test_evaluation_report_opens_from_disk_with_every_figure(tiny_dag, chromium):
    from tools.browser import check_images

    target = tiny_dag.path
    page = target / "reports/evaluation.html"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html
    images = check_images(page)
    report = json.loads((target / "reports/evaluation.json").read_text())
    mistakes = sum(len(rows) for rows in report["mistakes"].values())
    # reliability (2 test splits), ROC/PR, robustness (2), gates (2), and one thumbnail per mistake
    assert len(images["yes"]) >= 7 + mistakes and not images["no"], images["no"]
