"""Step 1 importers: the registry, hateful_memes, synthetic, and prepare over several kinds of source end to end;
each bad-input case on a real file. The jsonl and csv importers: test_table_importers.py."""
import json
from pathlib import Path

import pytest
from PIL import Image

from core.errors import PipelineError
from core.files import read_json, read_jsonl
from core.params import build
from Step_1.config import PrepareConfig, SourceConfig
from Step_1.importers import import_hateful_memes
from Step_1.sources import IMPORTERS, import_synthetic
from Step_3.taxonomy import TaxonomyConfig, build_taxonomy, map_label

LABELS = {"0": "benign", "1": "abuse_hate"}


def source(kind: str, path, options=None, name: str = "src") -> SourceConfig:
    return build(SourceConfig, {"name": name, "kind": kind, "label_map": LABELS, "path": str(path),
                                "options": options or {}}, where="prepare.sources[0]")


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def png(path: Path, colour=(200, 30, 30), size=(24, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def error(call, *args) -> str:
    with pytest.raises(PipelineError) as err:
        call(*args)
    return str(err.value)


def test_all_kinds_are_registered():
    assert set(IMPORTERS) == {"synthetic", "hateful_memes", "jsonl", "csv", "reviews"}


# ---------------------------------------------------------------- hateful_memes

def hm_folder(root: Path) -> Path:
    """train (2), dev_seen (2), dev_unseen (overlaps dev_seen by one id + 1 new), test_unseen (no labels)."""
    for i in (1, 2, 3, 4, 5, 6):
        png(root / "img" / f"0{i}.png", colour=(40 * i, 20, 20))
    write_jsonl(root / "train.jsonl", [{"id": 1, "img": "img/01.png", "label": 1, "text": "first meme"},
                                       {"id": 2, "img": "img/02.png", "label": 0, "text": "second meme"}])
    write_jsonl(root / "dev_seen.jsonl", [{"id": 3, "img": "img/03.png", "label": 0, "text": "third"},
                                          {"id": 4, "img": "img/04.png", "label": 1, "text": "fourth"}])
    write_jsonl(root / "dev_unseen.jsonl", [{"id": 4, "img": "img/04.png", "label": 1, "text": "fourth"},
                                            {"id": 5, "img": "img/05.png", "label": 0, "text": "fifth"}])
    write_jsonl(root / "test_unseen.jsonl", [{"id": 6, "img": "img/06.png", "text": "sixth, no label"}])
    return root


def test_hateful_memes_layout_splits_overlap_and_unlabelled(tmp_path):
    root = hm_folder(tmp_path / "hm")
    rows, schema, rejected = import_hateful_memes(source("hateful_memes", root), tmp_path / "out", 1)
    assert schema == {"numeric": [], "categorical": []} and rejected == []
    by_id = {r["local_id"]: r for r in rows}
    assert sorted(by_id) == ["1", "2", "3", "4", "5", "6"]  # id 4 in dev_seen and dev_unseen: one record
    # dev_unseen's own memes are val_unseen (model selection on unseen material); id 4 is in dev_seen too: val
    assert [by_id[i]["split"] for i in "123456"] == ["train", "train", "val", "val", "val_unseen", "test_unseen"]
    assert by_id["4"]["meta"] == {"file": "dev_seen.jsonl", "line": 2}  # the first file wins
    assert by_id["1"]["label"] == 1 and by_id["2"]["label"] == 0 and by_id["6"]["label"] is None
    assert by_id["6"]["text"] == "sixth, no label"
    for row in rows:
        assert Path(row["image"]).is_file() and Path(row["image"]).is_relative_to(root.resolve())
        assert row["image"] == str((root / "img" / f"0{row['local_id']}.png").resolve())


def test_hateful_memes_subset_of_files_and_files_option(tmp_path):
    root = hm_folder(tmp_path / "hm")
    (root / "dev_unseen.jsonl").unlink()
    rows, _, _ = import_hateful_memes(source("hateful_memes", root), tmp_path, 1)
    assert len(rows) == 5
    rows, _, _ = import_hateful_memes(source("hateful_memes", root, {"files": ["test_unseen.jsonl"]}), tmp_path, 1)
    assert [r["local_id"] for r in rows] == ["6"]


def test_hateful_memes_without_any_file_fails_naming_folder_and_files(tmp_path):
    (tmp_path / "empty").mkdir()
    msg = error(import_hateful_memes, source("hateful_memes", tmp_path / "empty"), tmp_path, 1)
    assert str((tmp_path / "empty").resolve()) in msg and "train.jsonl" in msg and "test_unseen.jsonl" in msg


def test_hateful_memes_same_id_other_image_fails_naming_both_lines(tmp_path):
    root = hm_folder(tmp_path / "hm")
    write_jsonl(root / "dev_unseen.jsonl", [{"id": 5, "img": "img/05.png", "label": 0, "text": "x"},
                                            {"id": 4, "img": "img/05.png", "label": 1, "text": "x"}])
    msg = error(import_hateful_memes, source("hateful_memes", root), tmp_path, 1)
    assert f"{root.resolve() / 'dev_seen.jsonl'}:2" in msg and f"{root.resolve() / 'dev_unseen.jsonl'}:2" in msg


def test_hateful_memes_duplicate_id_within_one_file_fails(tmp_path):
    root = hm_folder(tmp_path / "hm")
    write_jsonl(root / "train.jsonl", [{"id": 1, "img": "img/01.png", "label": 1, "text": "a"},
                                       {"id": 1, "img": "img/01.png", "label": 1, "text": "a"}])
    msg = error(import_hateful_memes, source("hateful_memes", root), tmp_path, 1)
    assert "train.jsonl:1" in msg and "train.jsonl:2" in msg and "duplicate id '1'" in msg


def test_hateful_memes_missing_img_field_and_bad_json(tmp_path):
    root = hm_folder(tmp_path / "hm")
    write_jsonl(root / "train.jsonl", [{"id": 1, "img": "img/01.png", "label": 1, "text": "a"},
                                       {"id": 2, "label": 0, "text": "no image"}])
    msg = error(import_hateful_memes, source("hateful_memes", root), tmp_path, 1)
    assert "train.jsonl:2" in msg and "'img'" in msg
    write_jsonl(root / "train.jsonl", [{"id": 1, "img": "img/01.png", "label": 1, "text": "a"}, '{"id": 2, "img": '])
    msg = error(import_hateful_memes, source("hateful_memes", root), tmp_path, 1)
    assert "train.jsonl:2" in msg and "invalid JSON" in msg


def test_hateful_memes_options_are_checked(tmp_path):
    root = hm_folder(tmp_path / "hm")
    msg = error(import_hateful_memes, source("hateful_memes", root, {"file": ["train.jsonl"]}), tmp_path, 1)
    assert "unknown key 'file'" in msg and "files" in msg
    msg = error(import_hateful_memes, source("hateful_memes", root, {"files": ["extra.jsonl"]}), tmp_path, 1)
    assert "extra.jsonl" in msg and "train, dev or test" in msg




def test_synthetic_importer_returns_no_rejected_rows(tmp_path):
    cfg = source("synthetic", "unused", {"count": 2, "image_size": 64})
    rows, schema, rejected = import_synthetic(cfg, tmp_path, 1)
    assert len(rows) == 2 and rejected == [] and schema["numeric"]


# ---------------------------------------------------------------- end to end

def test_prepare_with_hateful_memes_csv_and_synthetic_sources(tmp_path):
    from Step_1.prepare import prepare
    from Step_2.ocr import build_manifest

    hm = hm_folder(tmp_path / "hateful_memes")
    export = tmp_path / "export"
    for name in ("p1", "p2", "p3"):
        png(export / "media" / f"{name}.png", colour=(30, 160, 30))
    (export / "posts.csv").write_text(
        "post_id,file,caption,flag,subset,followers,platform\n"
        "p1,media/p1.png,hello world,1,train,120,forum\n"
        "p2,media/p2.png,,0,val,abc,chat\n"
        "p3,media/p3.png,caption ✓,,test_seen,,\n"
        "p4,../secret.png,escape,0,train,5,chat\n", encoding="utf-8")
    cfg = build(PrepareConfig, {"workers": 1, "sources": [
        {"name": "hm", "kind": "hateful_memes", "path": str(hm), "label_map": LABELS},
        {"name": "posts", "kind": "csv", "path": str(export / "posts.csv"), "label_map": LABELS,
         "options": {"image": "file", "id": "post_id", "text": "caption", "label": "flag", "split": "subset",
                     "numeric": ["followers"], "categorical": ["platform"]}},
        {"name": "synthetic", "kind": "synthetic", "label_map": {"hateful": "abuse_hate", "benign": "benign"},
         "options": {"count": 5, "image_size": 96}},
    ]}, where="prepare")
    out = tmp_path / "prepared"
    summary = prepare(cfg, out)
    assert summary["per_source"] == {"hm": 6, "posts": 3, "synthetic": 5}
    records = read_jsonl(out / "records.jsonl")
    schema = read_json(out / "schema.json")
    assert set(schema["numeric"]) >= {"followers"} and set(schema["categorical"]) >= {"platform"}
    by_id = {r["id"]: r for r in records}
    assert by_id["hm-4"]["split"] == "val" and by_id["hm-6"]["label"] is None and by_id["hm-1"]["label"] == 1
    assert by_id["posts-p1"]["label"] == "1" and by_id["posts-p3"]["text"] == "caption ✓"
    assert by_id["posts-p2"]["tabular"] == {"followers": "abc", "platform": "chat"}
    assert "posts-p4" not in by_id  # rejected: its image path leaves the export folder
    # Every image is readable by Step 2, and every label maps through the taxonomy of Step 3.
    manifest, rejected = build_manifest(records, 40_000_000)
    assert len(manifest) == 14 and rejected == []
    taxonomy = build_taxonomy(TaxonomyConfig(classes=["benign", "abuse_hate"], positive="abuse_hate"),
                              [{"name": s.name, "label_map": s.label_map} for s in cfg.sources])
    labels = [map_label(taxonomy, r["source"], r["label"], where=r["id"]) for r in records]
    assert labels.count(-1) == 2 and by_id["posts-p1"]["image"] == str((export / "media" / "p1.png").resolve())
