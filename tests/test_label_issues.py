"""Step_7.label_issues: flipped labels in two separable clusters are the ones flagged, ranked by self-confidence,
from out-of-fold probabilities computed on embeddings in the expert cache's own format."""
import sys

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.errors import PipelineError
from core.files import read_json, write_json, write_jsonl
from Step_4.features.tensors import save_embeddings
from Step_7 import label_issues as li

CLASSES = ["benign", "abuse_hate"]


def clusters(n: int = 300, flips=(3, 40, 77, 150, 201, 288), seed: int = 0):
    """Two well separated Gaussian clusters (text 4-d, vision 6-d) with the labels of `flips` swapped."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 2
    text = rng.normal(size=(n, 4)) + 3.0 * truth[:, None]
    vision = rng.normal(size=(n, 6)) - 3.0 * truth[:, None]
    given = truth.copy()
    given[list(flips)] = 1 - given[list(flips)]
    return [f"m{i:04d}" for i in range(n)], text, vision, given, truth


def write_cache(root, split, ids, text, vision, labels, truth):
    for modality, x in (("text", text), ("vision", vision)):
        save_embeddings(root / modality / f"{split}.safetensors", {
            "ids": ids, "features": torch.tensor(x, dtype=torch.float32), "logits": torch.zeros(len(ids), 2),
            "labels": torch.tensor(labels), "true_labels": torch.tensor(truth),
            "present": torch.ones(len(ids), dtype=torch.bool)}, modality)


def test_the_flipped_labels_are_flagged_least_confident_first():
    ids, text, vision, given, _ = clusters()
    probs = li.out_of_fold_probs(np.hstack([text, vision]), given)
    found = li.label_issues(ids, given, probs, CLASSES)
    assert {f["id"] for f in found} == {"m0003", "m0040", "m0077", "m0150", "m0201", "m0288"}
    confidences = [f["self_confidence"] for f in found]
    assert confidences == sorted(confidences) and confidences[-1] < 0.5
    assert all(f["suggested_label"] != f["given_label"] for f in found)
    assert found[0] == {"id": found[0]["id"], "given_label": CLASSES[given[int(found[0]["id"][1:])]],
                        "suggested_label": CLASSES[1 - given[int(found[0]["id"][1:])]],
                        "self_confidence": confidences[0]}
    assert li.label_issues(ids, given, probs, CLASSES, top=2) == found[:2]


def test_each_meme_is_scored_by_the_model_of_the_folds_without_it():
    ids, text, vision, given, _ = clusters(n=100, flips=(7,))
    x = np.hstack([text, vision])
    probs = li.out_of_fold_probs(x, given, folds=5, seed=1)
    for train, held in StratifiedKFold(5, shuffle=True, random_state=1).split(x, given):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=li.C, max_iter=2000)).fit(x[train], given[train])
        assert np.allclose(probs[held], model.predict_proba(x[held]))
    with pytest.raises(PipelineError, match="fewer than the 5 folds"):
        li.out_of_fold_probs(np.zeros((8, 2)), np.array([0, 0, 0, 0, 0, 1, 1, 1]))


def test_the_cli_reads_the_cache_of_train_and_val_and_writes_the_report(tmp_path, monkeypatch):
    ids, text, vision, given, truth = clusters()
    cut = 220
    write_cache(tmp_path / "emb", "train", ids[:cut], text[:cut], vision[:cut], given[:cut], truth[:cut])
    write_cache(tmp_path / "emb", "val", ids[cut:], text[cut:], vision[cut:], given[cut:], truth[cut:])
    data = li.load_features(tmp_path / "emb")
    assert data["ids"] == ids and data["features"].shape == (300, 10) and (data["true_labels"] == truth).all()
    write_json(tmp_path / "taxonomy.json", {"classes": CLASSES})
    argv = ["x", "--embeddings", str(tmp_path / "emb"), "--taxonomy", str(tmp_path / "taxonomy.json"),
            "--out", str(tmp_path / "issues.json"), "--top", "2", "--save-predictions", str(tmp_path / "oof.jsonl")]
    monkeypatch.setattr(sys, "argv", argv)
    li.main()
    report = read_json(tmp_path / "issues.json")
    assert report["memes"] == 300 and report["flagged"] == 6 and len(report["issues"]) == 2
    monkeypatch.setattr(sys, "argv", [*argv[:1], "--predictions", str(tmp_path / "oof.jsonl"), *argv[3:9]])
    li.main()  # the saved probabilities give the same flags
    assert read_json(tmp_path / "issues.json")["issues"] == report["issues"]


def test_a_bad_predictions_row_is_named(tmp_path):
    write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "label": "benign", "probs": [0.9, 0.1]},
                                       {"id": "b", "label": "hateful", "probs": [0.2, 0.8]}])
    with pytest.raises(PipelineError, match=r"p\.jsonl:2: needs 'label'"):
        li.read_predictions(tmp_path / "p.jsonl", CLASSES)


def test_flagged_memes_join_the_review_queue_first_under_the_label_issue_order(tmp_path):
    from PIL import Image

    from Step_7.store import LabelStore

    records = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (8, 8), (i * 60,) * 3).save(path)
        records.append({"id": f"m{i}", "image": str(path), "text": f"caption {i}"})
    write_jsonl(tmp_path / "records.jsonl", records)
    store = LabelStore(f"sqlite:///{tmp_path}/labels.db")
    store.add_item(image=b"traffic meme", media_type="image/png", source="traffic", text="t",
                   scored={"probability": 0.5, "threshold": 0.5})  # as uncertain as it gets
    issues = [{"id": "m1", "given_label": "abuse_hate", "suggested_label": "benign", "self_confidence": 0.1},
              {"id": "gone", "given_label": "benign", "suggested_label": "abuse_hate", "self_confidence": 0.2},
              {"id": "m2", "given_label": "benign", "suggested_label": "abuse_hate", "self_confidence": 0.3}]
    probs = {"m1": np.array([0.9, 0.1]), "gone": np.array([0.2, 0.8]), "m2": np.array([0.3, 0.7])}
    counts = li.enqueue_issues(issues, probs, tmp_path / "records.jsonl", store, CLASSES, "abuse_hate")
    again = li.enqueue_issues(issues, probs, tmp_path / "records.jsonl", store, CLASSES, "abuse_hate")
    assert counts == {"queued": 2, "already_queued": 0, "missing": 1} and again["already_queued"] == 2
    queue = store.queue(order="label_issue")
    assert [q["source"] for q in queue] == ["label_issue", "label_issue", "traffic"]
    first = queue[0]  # the least self-confident: m1 (0.1) before m2 (0.3), though m2 is nearer 0.5
    assert first["source"] == "label_issue" and first["text"] == "caption 1"
    assert first["scored"]["suggested_label"] == "benign" and first["scored"]["probability"] == pytest.approx(0.1)
