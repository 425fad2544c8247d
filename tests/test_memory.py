"""The labelled memory: keys, kNN vote, build / add / remove, its blend with the head, and the adaptation draws."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import yaml

from core.errors import PipelineError
from core.params import build
from Step_4.features.tensors import save_embeddings
from Step_5.memory import parser
from Step_5.memory_config import MemoryConfig
from Step_5.memory_store import LabelledMemory, combine, explain_with_memory, memory_keys, open_memory
from Step_5.studies import adaptation
from Step_5.studies.trends import draw_pools, first_k, stratified_order

CLASSES = ["benign", "abuse_hate"]
LAYOUT = [("text", 4, 1.0), ("vision", 3, 0.5)]


def write_split(root, split: str, n: int, seed: int) -> None:
    """Text (4-d) and vision (3-d) embeddings of n memes, half of each class; meme 0 lacks its image."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    present = torch.ones(n, dtype=torch.bool)
    for modality, dim in (("text", 4), ("vision", 3)):
        data = {"ids": [f"{split}-{i:03d}" for i in range(n)], "features": torch.randn(n, dim, generator=gen),
                "logits": torch.zeros(n, 2), "labels": labels, "true_labels": labels.clone(),
                "present": present.clone() if modality == "text" else present.clone().index_fill_(0, torch.tensor([0]), False)}
        save_embeddings(root / modality / f"{split}.safetensors", data, modality)


@pytest.fixture()
def repo(tmp_path):
    for split, n, seed in (("train", 12, 0), ("val", 6, 1), ("test_unseen", 8, 2)):
        write_split(tmp_path / "embeddings", split, n, seed)
    params = {"taxonomy": {"classes": CLASSES, "positive": "abuse_hate"},
              "memory": {"modalities": {"vision": 0.5, "text": 1.0}, "splits": ["train", "val"], "neighbours": 3,
                         "added": str(tmp_path / "added.safetensors")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def run(repo, *argv: str) -> None:
    args = parser().parse_args([*argv[:1], "--params", str(repo / "params.yaml"), *argv[1:]])
    args.run(args)


def empty(layout=LAYOUT, **kw) -> LabelledMemory:
    return LabelledMemory(layout, classes=CLASSES, positive=1, **kw)


def added_file(repo, ids, keys, labels) -> None:
    """What `memory add` writes: unweighted keys (weight 1 per modality) in the params' added file."""
    added = empty([(m, d, 1.0) for m, d, _ in LAYOUT])
    added.add(ids, keys, labels)
    added.save(repo / "added.safetensors")


def test_keys_are_weighted_unit_blocks_and_zero_for_an_absent_modality():
    feats = {"text": torch.tensor([[3.0, 4.0, 0, 0], [1, 0, 0, 0]]), "vision": torch.tensor([[0, 2.0, 0], [5, 0, 0]])}
    keys = memory_keys(feats, {"text": torch.tensor([True, True]), "vision": torch.tensor([True, False])}, LAYOUT)
    assert torch.allclose(keys[0], torch.tensor([0.6, 0.8, 0, 0, 0, 0.5, 0]))
    assert torch.allclose(keys[1], torch.tensor([1.0, 0, 0, 0, 0, 0, 0]))


def test_build_is_byte_identical_on_rebuild_and_holds_only_labelled_base_splits(repo):
    run(repo, "build", "--embeddings", str(repo / "embeddings"), "--out", str(repo / "m1"))
    run(repo, "build", "--embeddings", str(repo / "embeddings"), "--out", str(repo / "m2"))
    first, second = (repo / "m1" / "memory.safetensors").read_bytes(), (repo / "m2" / "memory.safetensors").read_bytes()
    assert first == second
    memory = LabelledMemory.load(repo / "m1" / "memory.safetensors")
    assert len(memory) == 18 and not [i for i in memory.ids if i.startswith("test_unseen")]
    assert memory.layout == LAYOUT  # registry order, whatever order params.yaml lists the modalities in
    assert not list(repo.glob("**/.*.tmp-*"))


def test_evaluation_splits_are_refused_for_the_base_memory():
    for split in ("test_seen", "test_unseen", "val_unseen"):
        with pytest.raises(PipelineError, match=f"{split}.*evaluation splits"):
            build(MemoryConfig, {"splits": ["train", split]}, where="memory")
    with pytest.raises(PipelineError, match="weight"):
        build(MemoryConfig, {"weight": 1.5}, where="memory")
    with pytest.raises(PipelineError, match="sorted"):
        build(MemoryConfig, {"study": {"k": [5, 0]}}, where="memory")


def test_added_memes_survive_a_base_rebuild_and_are_reweighted(repo):
    args = argparse.Namespace(params=str(repo / "params.yaml"), embeddings=str(repo / "embeddings"),
                              out=str(repo / "memory"))
    parser().parse_args(["build"]).run(args)
    added_file(repo, ["new-a"], torch.tensor([[1.0, 0, 0, 0, 0, 1.0, 0]]), [1])
    parser().parse_args(["build"]).run(args)  # `dvc repro` rebuilding the base
    memory = open_memory(repo / "memory", classes=CLASSES, modalities=["text", "vision", "tabular"])
    assert memory.ids[-1] == "new-a" and len(memory) == 19
    assert torch.allclose(memory.keys[-1], torch.tensor([1.0, 0, 0, 0, 0, 0.5, 0]))  # the base's vision weight
    with pytest.raises(PipelineError, match="classes"):
        open_memory(repo / "memory", classes=["benign", "hateful"])


def test_remove_by_id_and_an_unknown_id_changes_nothing(repo, capsys):
    added_file(repo, ["a", "b"], torch.eye(7)[:2], [0, 1])
    with pytest.raises(PipelineError, match="no meme zzz"):
        run(repo, "remove", "a", "zzz")
    assert LabelledMemory.load(repo / "added.safetensors").ids == ["a", "b"]
    run(repo, "remove", "a")
    assert LabelledMemory.load(repo / "added.safetensors").ids == ["b"]
    run(repo, "list", "--memory", str(repo / "nowhere"))
    out = capsys.readouterr().out
    assert "not built" in out and "1 memes {'abuse_hate': 1}" in out and "  b  abuse_hate" in out


def test_knn_probability_is_the_softmax_weighted_vote_of_the_top_neighbours():
    memory = empty(neighbours=2, temperature=0.5)
    memory.add(["p", "n", "far"], torch.eye(7)[[0, 1, 2]], [1, 0, 1])
    query = torch.tensor([[1.0, 0.5, 0, 0, 0, 0, 0]])
    rows, sims = memory.neighbours(query, 2)
    assert rows.tolist() == [[0, 1]] and torch.allclose(sims, torch.tensor([[1.0, 0.5]]))
    expected = np.exp(1 / 0.5) / (np.exp(1 / 0.5) + np.exp(0.5 / 0.5))  # 'far' is not among the top 2
    assert memory.knn_probability(query).item() == pytest.approx(expected, rel=1e-5)
    assert combine(torch.tensor([0.2]), torch.tensor([0.8]), 0.7).item() == pytest.approx(0.62)


def test_an_added_near_duplicate_is_the_nearest_neighbour_and_moves_the_probability(tmp_path):
    gen = torch.Generator().manual_seed(0)
    base = empty(neighbours=5, temperature=0.1, weight=0.7)
    base.add([f"b{i}" for i in range(40)], torch.nn.functional.normalize(torch.randn(40, 7, generator=gen), dim=1),
             [0] * 40)
    features = {"text": torch.randn(1, 4, generator=gen), "vision": torch.randn(1, 3, generator=gen),
                "tabular": torch.zeros(1, 2), "mask": torch.tensor([[True, True, False]])}
    head = torch.tensor([[0.6, 0.4]])
    before = explain_with_memory(base, features, head, ["text", "vision", "tabular"])[0]["memory"]
    near = {m: v + 0.01 for m, v in features.items() if m != "mask"}  # a near-duplicate of the query, hateful
    key = memory_keys(near, {"text": torch.tensor([True]), "vision": torch.tensor([True])}, LAYOUT)
    base.add(["dup"], key, [1])
    base.save(tmp_path / "memory.safetensors")
    after = explain_with_memory(LabelledMemory.load(tmp_path / "memory.safetensors"), features, head,
                                ["text", "vision", "tabular"])[0]["memory"]
    assert after["neighbours"][0]["id"] == "dup" and after["neighbours"][0]["label"] == "abuse_hate"
    assert len(after["neighbours"]) == 3 and after["neighbours"][0]["similarity"] > 1.2
    assert after["probability"] > before["probability"] + 0.3 and after["head_probability"] == before["head_probability"]


def test_pools_never_hold_an_evaluation_meme_are_stratified_and_at_most_half_a_trend():
    values = ["a"] * 60 + ["b"] * 9 + ["c"] + [None] * 10
    labels = np.array([i % 3 == 0 for i in range(60)] + [1, 0, 0, 0, 0, 0, 0, 0, 0] + [1] + [0] * 10, dtype=int)
    pools, evaluation = draw_pools(values, labels, 25, np.random.default_rng(0))
    pooled = first_k(pools, 25)
    assert not set(pooled) & set(evaluation.tolist()) and len(pooled) + len(evaluation) == len(values)
    assert set(range(70, 80)) <= set(evaluation.tolist())  # memes of no trend are only ever scored
    assert {t: len(p) for t, p in pools.items()} == {"a": 25, "b": 4}  # 'c' (one meme) has no pool
    for k in (5, 10, 25):  # every prefix keeps the trend's label share (1/3) within one meme
        assert abs(sum(labels[r] for r in pools["a"][:k]) - k / 3) <= 1
    assert sorted(stratified_order(np.arange(6), np.array([0, 0, 0, 0, 1, 1]), np.random.default_rng(1))[:3])
    again, _ = draw_pools(values, labels, 25, np.random.default_rng(0))
    assert again == pools


def test_the_study_scores_only_evaluation_memes_with_pooled_memes_in_the_memory(monkeypatch):
    keys = torch.nn.functional.normalize(torch.randn(40, 7, generator=torch.Generator().manual_seed(3)), dim=1)
    labels = np.arange(40) % 2
    test = adaptation.Scored([f"t{i}" for i in range(40)], keys, labels, labels == 1, np.full(40, 0.5), np.zeros(40))
    pools, rows = draw_pools(["x"] * 20 + ["y"] * 20, labels, 5, np.random.default_rng(0))
    base = empty(neighbours=1, temperature=0.1, weight=1.0)
    base.add(["b"], torch.zeros(1, 7), [0])
    seen, vote = [], LabelledMemory.knn_probability

    def spy(memory, query):
        seen.append(([i for i in memory.ids if i != "b"], query))
        return vote(memory, query)

    monkeypatch.setattr(LabelledMemory, "knn_probability", spy)
    scores, added = adaptation.memory_aurocs(base, test, test, pools, rows, [0, 5])
    assert added == [0, 10] and scores[0] == 0.5  # base alone: one vote, the same for every meme
    assert seen[0][0] == [] and sorted(seen[1][0]) == sorted(f"t{r}" for r in first_k(pools, 5))
    scored = {f"t{r}" for r in rows}
    assert all(torch.equal(query, keys[rows]) and not scored & set(ids) for ids, query in seen)
    assert len(base) == 1  # the base memory itself is never changed by the study


def test_every_subcommand_and_the_study_have_help(capsys, monkeypatch):
    for command in ("build", "add", "remove", "list"):
        with pytest.raises(SystemExit) as done:
            parser().parse_args([command, "--help"])
        assert done.value.code == 0 and f"usage: python -m Step_5.memory {command}" in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", ["adaptation", "--help"])
    with pytest.raises(SystemExit):
        adaptation.main()
    assert "--comparison" in capsys.readouterr().out


def test_a_tiny_split_with_one_class_gives_empty_cells_not_a_crash(capsys):
    keys = torch.nn.functional.normalize(torch.randn(6, 7, generator=torch.Generator().manual_seed(4)), dim=1)
    test = adaptation.Scored([f"t{i}" for i in range(6)], keys, np.zeros(6, dtype=int), np.zeros(6, dtype=bool),
                             np.full(6, 0.3), np.zeros(6))
    base = empty()
    base.add(["b0", "b1"], torch.eye(7)[:2], [0, 1])
    found = adaptation.run_draws(MemoryConfig(), base, test, {"frame": ["a"] * 6, "group": None}, None, None)
    assert set(found) == {"memory_frame", "finetune_frame"}
    curves = {c: adaptation.summarise(d, [0, 5, 10, 25]) for c, d in found.items()}
    assert curves["memory_frame"]["rows"][0] == {"k": 0, "auroc": None, "auroc_std": None, "head_auroc": None,
                                                 "memes_added": 0.0, "gain_over_k0": None, "gain_over_head": None}
    result = {"deployed": "fusion_x", "k": [0, 5, 10, 25], "curves": curves,
              "skipped": {"memory_group": "no meta.group"}}
    rows = adaptation.plot_rows(result)
    assert [r["k"] for r in rows] == [0, 5, 10, 25]
    assert set(rows[0]) == {"k", "memory_frame", "finetune_frame", "head"}
    assert adaptation.quality(result)["curves"]["memory_frame"]["k0"] == {
        "auroc": None, "auroc_std": None, "head_auroc": None, "gain_over_k0": None, "gain_over_head": None}
    adaptation.print_table(result)
    assert "skipped memory_group: no meta.group" in capsys.readouterr().out
