import hashlib
from pathlib import Path

import pytest

from core.errors import PipelineError
from Step_3.reader import ShardReader, iter_samples
from Step_3.shard import write_shards
from Step_3.splits import SPLITS, assign_splits, check_labelled, link_groups
from Step_3.taxonomy import map_label


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.tar"))}


def test_shards_round_trip_and_are_byte_identical(tiny_pipeline, tmp_path):
    t = tiny_pipeline
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        write_shards(t["rows"], t["labels"], t["splits"], out, t["shard_cfg"], 40_000_000)
    assert _digest(first) == _digest(second) and _digest(first)
    by_id = {r["id"]: (r, label) for r, label in zip(t["rows"], t["labels"])}
    seen = []
    for split in (s for s in SPLITS if s in t["splits"]):
        for sample in iter_samples(first, split):
            row, label = by_id[sample["id"]]
            assert sample["text"] == row["text"] and sample["meta"]["label"] == label
            assert sample["meta"]["true_label"] == row["true_label"] and sample["meta"]["split"] == split
            assert sample["meta"]["tabular"] == row["tabular"] and tuple(sample["image"].shape) == (3, 320, 320)
            seen.append(sample["id"])
    assert sorted(seen) == sorted(by_id)


def test_loader_shuffles_reproducibly(tiny_pipeline, tmp_path):
    t = tiny_pipeline
    write_shards(t["rows"], t["labels"], t["splits"], tmp_path, t["shard_cfg"], 40_000_000)

    def epochs(seed, n=2):
        loader = ShardReader(tmp_path, {}).loader("train", transform=lambda s: s["id"], collate=list, batch_size=4,
                                                  shuffle=True, seed=seed, decode_images=False)
        return [[i for batch in loader for i in batch] for _ in range(n)]

    first, second = epochs(1)
    assert epochs(1) == [first, second]  # same seed, same order per epoch
    assert first != second and sorted(first) == sorted(second)  # each epoch reshuffles


def test_identical_images_never_straddle_splits():
    rows = [{"id": f"s-{i}", "sha256": f"h{i % 10}", "source": "s", "split": None, "group": None} for i in range(40)]
    labels = [i % 2 for i in range(40)]
    splits = assign_splits(rows, labels, {"train": 0.6, "val": 0.2, "test_seen": 0.2}, 0, link_groups(rows))
    for h in {r["sha256"] for r in rows}:
        assert len({s for r, s in zip(rows, splits) if r["sha256"] == h}) == 1
    assert set(splits) == {"train", "val", "test_seen"}


def test_split_is_stratified_and_official_split_kept():
    rows = [{"id": f"s-{i}", "sha256": f"h{i}", "source": "s", "split": None, "group": None} for i in range(200)]
    for i in range(0, 20, 2):
        rows[i]["split"] = "test_unseen"
    labels = [int(i < 60) for i in range(200)]
    fractions = {"train": 0.7, "val": 0.1, "test_seen": 0.2}
    splits = assign_splits(rows, labels, fractions, 3, link_groups(rows))
    assert [i for i, s in enumerate(splits) if s == "test_unseen"] == list(range(0, 20, 2))  # only official rows
    for label, total in ((1, 50), (0, 140)):  # the other 190 rows are dealt by fractions, per label
        n_test = sum(1 for i, (s, y) in enumerate(zip(splits, labels)) if s == "test_seen" and y == label)
        assert abs(n_test - 0.2 * total) <= 2
    assert splits == assign_splits(rows, labels, fractions, 3, link_groups(rows))


def test_test_unseen_is_optional_but_the_dealt_splits_need_both_classes():
    classes = ["benign", "abuse_hate"]
    splits = ["train", "train", "val", "val", "test_seen", "test_seen", "test_unseen"]
    assert check_labelled([0, 1, 0, 1, 0, 1, 1], splits, classes) == [
        "split 'test_unseen' has no labelled example of ['benign']: its AUROC is undefined"]
    assert check_labelled([0, 1, 0, 1, 0, 1], splits[:-1], classes) == []
    with pytest.raises(PipelineError, match="split 'test_seen' has 2 rows but no labelled example of"):
        check_labelled([0, 1, 0, 1, 1, 1], splits[:-1], classes)


def test_taxonomy_maps_and_names_allowed_values(tiny_pipeline):
    tax = tiny_pipeline["taxonomy"]
    assert map_label(tax, "synthetic", "hateful", "row") == 1
    assert map_label(tax, "synthetic", None, "row") == -1
    with pytest.raises(PipelineError, match=r"allowed values: \['benign', 'hateful'\]"):
        map_label(tax, "synthetic", "spam", "row 7")


def test_shards_reuse_the_ocr_stage_decode_and_notice_changed_files(tiny_pipeline, tmp_path, monkeypatch):
    """Plain images go into the shards as their bytes (no second decode); a file edited since OCR is an error."""
    import Step_3.shard as shard

    t = tiny_pipeline
    monkeypatch.setattr(shard, "read_image", lambda *a: (_ for _ in ()).throw(AssertionError("decoded again")))
    plain = [i for i, r in enumerate(t["rows"]) if not r["needs_conversion"]]
    assert len(plain) == len(t["rows"])
    write_shards(t["rows"], t["labels"], t["splits"], tmp_path / "ok", t["shard_cfg"], 40_000_000)
    changed = [dict(r) for r in t["rows"]]
    copy = tmp_path / "edited.jpg"
    copy.write_bytes(Path(changed[0]["image"]).read_bytes() + b"\0")
    changed[0]["image"] = str(copy)
    with pytest.raises(PipelineError, match="changed or vanished since the ocr stage"):
        write_shards(changed, t["labels"], t["splits"], tmp_path / "bad", t["shard_cfg"], 40_000_000)


def test_test_unseen_material_never_reaches_train_val_or_test_seen(tiny_pipeline):
    """Caption frames, group names and image families of test_unseen memes occur in no other split."""
    t = tiny_pipeline
    by_split = {}
    for row, split in zip(t["rows"], t["splits"]):
        for key in ("frame", "group", "image_family"):
            if row["meta"].get(key):
                by_split.setdefault(split == "test_unseen", set()).add((key, row["meta"][key]))
    assert by_split[True] and by_split[False] and not by_split[True] & by_split[False]
    assert {s for r, s in zip(t["rows"], t["splits"]) if r["split"] == "test_unseen"} == {"test_unseen"}
