"""bench.active_learning on a tiny generated embedding cache: every strategy labels 50 new memes a round from a
stratified start of 20, the summary's ratio is to random, and label-issue flags are scored against true labels."""
import numpy as np
import torch

from bench import active_learning as al
from Step_4.features.tensors import save_embeddings
from Step_7 import label_issues as li


def write_cache(root, split: str, n: int, seed: int, flips=()) -> None:
    """Text separates the classes weakly, vision strongly; `flips` are annotator errors (true label kept)."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 2
    labels = truth.copy()
    labels[list(flips)] = 1 - labels[list(flips)]
    features = {"text": rng.normal(size=(n, 3)) + 1.0 * truth[:, None],
                "vision": rng.normal(size=(n, 5)) + 4.0 * truth[:, None]}
    for modality, x in features.items():
        save_embeddings(root / modality / f"{split}.safetensors", {
            "ids": [f"{split}-{i:04d}" for i in range(n)], "features": torch.tensor(x, dtype=torch.float32),
            "logits": torch.zeros(n, 2), "labels": torch.tensor(labels), "true_labels": torch.tensor(truth),
            "present": torch.ones(n, dtype=torch.bool)}, modality)


def test_each_strategy_labels_a_batch_a_round_until_the_target_and_the_budget(tmp_path):
    write_cache(tmp_path, "train", 200, 0)
    write_cache(tmp_path, "test_seen", 100, 1)
    data = al.load(tmp_path)
    assert data["text_dim"] == 3 and data["pool"].shape == (200, 8)
    assert np.allclose(data["pool"].mean(0), 0, atol=1e-6)
    runs = {s: {seed: al.simulate(data, s, seed, target=0.9, budget=120) for seed in (0, 1)} for s in al.STRATEGIES}
    for strategy, seeds in runs.items():
        for run in seeds.values():
            assert [n for n, _ in run["curve"]] == [20, 70, 120], strategy
            assert run["labels_needed"] == 20  # the classes separate: 20 memes already reach the target
    never = al.simulate(data, "uncertainty", 0, target=1.01, budget=0)
    assert [n for n, _ in never["curve"]] == [20, 70, 120, 170, 200] and never["labels_needed"] is None
    summary = al.summarise({**runs, "uncertainty": {0: never, 1: never}}, pool_size=200)
    assert summary["uncertainty"] == {"labels_mean": 200.0, "labels_std": 0.0, "reached": 0, "runs": 2,
                                      "ratio_to_random": 10.0}
    flags = {"memes": 300, "label_errors": 4, "error_rate": 0.0133, "flagged": 5, "precision": 0.6, "recall": 0.75,
             "precision_top50": 0.6}
    table = al.format_table({"pool": 200, "budget": 120, "full_auroc": 0.9, "target": 0.855, "seeds": [0, 1],
                             "runs": runs, "summary": summary, "label_issues": flags})
    assert "AUROC@120" in table and "AUROC@270" not in table and "nan" not in table
    assert "uncertainty         200 ± 0         0/2" in table and "precision 0.600, recall 0.750" in table


def test_choose_follows_each_strategy(tmp_path):
    write_cache(tmp_path, "train", 200, 0)
    write_cache(tmp_path, "test_seen", 100, 1)
    data = al.load(tmp_path)
    x, y = data["pool"], data["labels"]
    labelled = np.zeros(200, dtype=bool)
    labelled[:20] = True
    model = al.fit(x[:20], y[:20])
    picked = al.choose("uncertainty", x, y, labelled, model, 3, np.random.default_rng(0))
    margin = np.abs(al.positive(model, x[20:]) - 0.5)
    assert len(picked) == 50 and not labelled[picked].any()
    assert np.abs(al.positive(model, x[picked]) - 0.5).max() <= np.sort(margin)[49] + 1e-12
    gap = al.choose("disagreement", x, y, labelled, model, 3, np.random.default_rng(0))
    assert len(set(gap)) == 50 and set(gap) != set(picked)


def test_label_issue_flags_are_scored_against_true_labels(tmp_path):
    write_cache(tmp_path, "train", 240, 0, flips=(5, 60, 131))
    write_cache(tmp_path, "val", 60, 2, flips=(10,))
    flags = al.flag_quality(tmp_path)
    assert flags["memes"] == 300 and flags["label_errors"] == 4 and flags["error_rate"] == round(4 / 300, 4)
    data = li.load_features(tmp_path)
    found = {f["id"] for f in li.label_issues(data["ids"], data["labels"],
                                              li.out_of_fold_probs(data["features"], data["labels"]), ["b", "a"])}
    hits = len(found & {"train-0005", "train-0060", "train-0131", "val-0010"})
    assert hits >= 2 and flags["flagged"] == len(found)
    assert flags["precision"] == round(hits / len(found), 4) and flags["recall"] == round(hits / 4, 4)
