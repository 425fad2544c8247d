"""Step 1 importers for real data (hateful_memes, jsonl, csv), each bad-input case on a real file."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import PipelineError
from core.files import read_json, read_jsonl
from core.params import build
from Step_1.config import PrepareConfig, SourceConfig
from Step_1.importers import import_csv, import_hateful_memes, import_jsonl
from Step_1.sources import IMPORTERS, import_synthetic
from Step_3.tabular import TabularEncoder, fit_schema
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
    assert set(IMPORTERS) == {"synthetic", "hateful_memes", "jsonl", "csv"}


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
    assert [by_id[i]["split"] for i in "123456"] == ["train", "train", "val", "val", "val", "test_unseen"]
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


# ---------------------------------------------------------------- jsonl

JSONL_OPTS = {"image": "path", "id": "uid", "text": "caption", "label": "y", "split": "part", "group": "author",
              "numeric": ["age"], "categorical": ["platform"]}


def test_jsonl_mapping_keeps_raw_values(tmp_path):
    png(tmp_path / "pics" / "a.png")
    file = write_jsonl(tmp_path / "index.jsonl", [
        {"uid": "a", "path": "pics/a.png", "caption": "hello", "y": 1, "part": "train", "author": 7,
         "age": 3.5, "platform": "x"},
        "",  # blank lines are skipped, line numbers still count them
        {"uid": "b", "path": "pics/b.png", "y": None, "part": "", "age": "n/a"},
    ])
    rows, schema, rejected = import_jsonl(source("jsonl", file, JSONL_OPTS), tmp_path, 1)
    assert schema == {"numeric": ["age"], "categorical": ["platform"]} and rejected == []
    a, b = rows
    assert (a["local_id"], a["label"], a["split"], a["group"], a["text"]) == ("a", 1, "train", "7", "hello")
    assert a["tabular"] == {"age": 3.5, "platform": "x"} and a["image"] == str(tmp_path / "pics" / "a.png")
    assert (b["label"], b["split"], b["group"], b["text"]) == (None, None, None, None)
    assert b["tabular"] == {"age": "n/a", "platform": None} and b["meta"] == {"file": "index.jsonl", "line": 3}


def test_jsonl_default_id_is_the_line_number_and_label_is_optional(tmp_path):
    file = write_jsonl(tmp_path / "index.jsonl", [{"p": "a.png"}, {"p": "b.png"}])
    rows, schema, _ = import_jsonl(source("jsonl", file, {"image": "p"}), tmp_path, 1)
    assert [r["local_id"] for r in rows] == ["1", "2"] and all(r["label"] is None for r in rows)
    assert schema == {"numeric": [], "categorical": []}


def test_jsonl_invalid_json_line(tmp_path):
    file = write_jsonl(tmp_path / "index.jsonl", [{"p": "a.png"}, "{'p': 'b.png'}", {"p": "c.png"}])
    msg = error(import_jsonl, source("jsonl", file, {"image": "p"}), tmp_path, 1)
    assert f"{file}:2" in msg and "invalid JSON" in msg
    write_jsonl(file, [{"p": "a.png"}, '["not", "an", "object"]'])
    assert f"{file}:2" in error(import_jsonl, source("jsonl", file, {"image": "p"}), tmp_path, 1)


def test_jsonl_missing_required_column_in_a_row(tmp_path):
    file = write_jsonl(tmp_path / "index.jsonl", [{"p": "a.png", "y": 0}, {"y": 1}])
    msg = error(import_jsonl, source("jsonl", file, {"image": "p", "label": "y"}), tmp_path, 1)
    assert f"{file}:2" in msg and "column 'p'" in msg
    write_jsonl(file, [{"p": "a.png", "y": 0}, {"p": "b.png"}])
    msg = error(import_jsonl, source("jsonl", file, {"image": "p", "label": "y"}), tmp_path, 1)
    assert f"{file}:2" in msg and "column 'y'" in msg


def test_jsonl_mapped_column_in_no_row_fails(tmp_path):
    file = write_jsonl(tmp_path / "index.jsonl", [{"p": "a.png", "txt": "hi"}])
    msg = error(import_jsonl, source("jsonl", file, {"image": "p", "text": "text"}), tmp_path, 1)
    assert str(file) in msg and "column 'text'" in msg


def test_jsonl_duplicate_ids_name_both_rows(tmp_path):
    file = write_jsonl(tmp_path / "index.jsonl", [{"id": 7, "p": "a.png"}, {"id": 8, "p": "b.png"},
                                                  {"id": 7, "p": "c.png"}])
    msg = error(import_jsonl, source("jsonl", file, {"image": "p", "id": "id"}), tmp_path, 1)
    assert f"{file}:1" in msg and f"{file}:3" in msg and "'7'" in msg


def test_jsonl_bad_split_value(tmp_path):
    file = write_jsonl(tmp_path / "index.jsonl", [{"p": "a.png", "s": "train"}, {"p": "b.png", "s": "dev"}])
    msg = error(import_jsonl, source("jsonl", file, {"image": "p", "split": "s"}), tmp_path, 1)
    assert f"{file}:2" in msg and "'dev'" in msg and "['train', 'val', 'test_seen', 'test_unseen']" in msg


def test_jsonl_nan_and_infinity_become_none(tmp_path):
    """JSON's NaN extension is read, but records must be strict JSON: non-finite numbers are missing."""
    file = tmp_path / "index.jsonl"
    file.write_text('{"p": "a.png", "age": NaN, "y": NaN}\n{"p": "b.png", "age": Infinity, "y": 1}\n')
    rows, _, _ = import_jsonl(source("jsonl", file, {"image": "p", "label": "y", "numeric": ["age"]}), tmp_path, 1)
    assert [r["tabular"]["age"] for r in rows] == [None, None] and [r["label"] for r in rows] == [None, 1]


# ---------------------------------------------------------------- csv

def test_csv_mapping_quoted_multiline_delimiter_and_raw_strings(tmp_path):
    file = tmp_path / "export.csv"
    file.write_text('id;image;text;label;split;likes;lang\n'
                    'm1;a.png;"two\nlines; with delimiter";1;train;12;en\n'
                    'm2;b.png;;0;test_seen;;\n'
                    '\n'
                    'm3;c.png;   ;;val;abc;fr\n', encoding="utf-8")
    opts = {"image": "image", "id": "id", "text": "text", "label": "label", "split": "split",
            "numeric": ["likes"], "categorical": ["lang"], "delimiter": ";"}
    rows, schema, rejected = import_csv(source("csv", file, opts), tmp_path, 1)
    assert schema == {"numeric": ["likes"], "categorical": ["lang"]} and rejected == []
    m1, m2, m3 = rows
    assert m1["text"] == "two\nlines; with delimiter" and m1["label"] == "1" and m1["tabular"] == {"likes": "12", "lang": "en"}
    assert (m2["text"], m2["label"], m2["split"]) == (None, "0", "test_seen")
    assert (m3["text"], m3["label"], m3["tabular"]["likes"]) == (None, "", "abc")
    assert [r["meta"]["line"] for r in rows] == [2, 4, 6]  # the row's first line; header = line 1


def test_csv_column_missing_from_header(tmp_path):
    file = tmp_path / "export.csv"
    file.write_text("image,text\na.png,hi\n")
    msg = error(import_csv, source("csv", file, {"image": "image", "label": "label"}), tmp_path, 1)
    assert f"{file}:1" in msg and "column 'label'" in msg


def test_csv_row_with_missing_or_extra_fields(tmp_path):
    file = tmp_path / "export.csv"
    file.write_text("image,text,label\na.png,hi,1\nb.png,hi\n")
    msg = error(import_csv, source("csv", file, {"image": "image", "label": "label"}), tmp_path, 1)
    assert f"{file}:3" in msg and "column 'label'" in msg
    file.write_text("image,text,label\na.png,hello, world,1\n")
    msg = error(import_csv, source("csv", file, {"image": "image", "label": "label"}), tmp_path, 1)
    assert f"{file}:2" in msg and "4 fields" in msg


def test_csv_duplicate_ids_name_both_rows(tmp_path):
    file = tmp_path / "export.csv"
    file.write_text("id,image\nx,a.png\ny,b.png\nx,c.png\n")
    msg = error(import_csv, source("csv", file, {"image": "image", "id": "id"}), tmp_path, 1)
    assert f"{file}:2" in msg and f"{file}:4" in msg


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_wrong_encoding_names_the_line_and_the_option(tmp_path, kind):
    file = tmp_path / f"export.{kind}"
    if kind == "csv":
        file.write_bytes(b"image,text\na.png,plain\nb.png,caf\xe9\n")
    else:
        file.write_bytes(b'{"image": "a.png", "text": "plain"}\n{"image": "b.png", "text": "caf\xe9"}\n')
    importer = {"csv": import_csv, "jsonl": import_jsonl}[kind]
    msg = error(importer, source(kind, file, {"image": "image", "text": "text"}), tmp_path, 1)
    assert f"{file}:{3 if kind == 'csv' else 2}" in msg and "utf-8" in msg and "encoding" in msg and "cp1252" in msg
    rows, _, _ = importer(source(kind, file, {"image": "image", "text": "text", "encoding": "cp1252"}), tmp_path, 1)
    assert rows[1]["text"] == "café"


def test_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    file = tmp_path / "export.csv"
    file.write_bytes("image,text\na.png,hi\n".encode("utf-8-sig"))
    rows, _, _ = import_csv(source("csv", file, {"image": "image"}), tmp_path, 1)
    assert rows[0]["image"] == str(tmp_path / "a.png")


def test_text_cleaning_blank_unicode_and_truncation(tmp_path):
    texts = ["", "   \t\n ", "WHEN 👀 THE 🤡", "ничего 没有 لا شيء", "ab😀cd", "e\u0301t\u00e9"]
    file = write_jsonl(tmp_path / "index.jsonl", [{"p": f"{i}.png", "t": t} for i, t in enumerate(texts)])
    rows, _, _ = import_jsonl(source("jsonl", file, {"image": "p", "text": "t"}), tmp_path, 1)
    assert [r["text"] for r in rows] == [None, None, *texts[2:]]  # kept exactly, no normalisation
    rows, _, _ = import_jsonl(source("jsonl", file, {"image": "p", "text": "t", "max_text_chars": 3}), tmp_path, 1)
    assert rows[4]["text"] == "ab😀"  # the 4-byte emoji is one character, kept whole
    assert rows[3]["text"] == "нич" and rows[2]["text"] == "WHE"
    assert all(len(r["text"]) <= 3 for r in rows if r["text"])
    file.write_text("p,t\na.png," + "é" * 2500 + "\n", encoding="utf-8")
    rows, _, _ = import_csv(source("csv", file, {"image": "p", "text": "t"}), tmp_path, 1)
    assert rows[0]["text"] == "é" * 2000  # default max_text_chars


def test_image_paths_escaping_the_root_are_rejected_not_fatal(tmp_path):
    (tmp_path / "data").mkdir()
    file = write_jsonl(tmp_path / "data" / "index.jsonl", [
        {"p": "ok.png"}, {"p": "../../etc/passwd"}, {"p": "/etc/passwd"}, {"p": "sub/../../x.png"},
        {"p": ""}, {"p": "sub/./../fine.png"}])
    rows, _, rejected = import_jsonl(source("jsonl", file, {"image": "p"}), tmp_path, 1)
    root = tmp_path / "data"
    assert [r["image"] for r in rows] == [str(root / "ok.png"), str(root / "fine.png")]
    assert [(r["row"], r["image"]) for r in rejected] == [(2, "../../etc/passwd"), (3, "/etc/passwd"),
                                                           (4, "sub/../../x.png"), (5, "")]
    assert "escapes the dataset root" in rejected[0]["reason"] and "absolute" in rejected[1]["reason"]
    assert all(r["source"] == "src" and r["file"] == str(file) for r in rejected)


def test_root_option_is_where_image_paths_start(tmp_path):
    png(tmp_path / "images" / "a.png")
    (tmp_path / "index").mkdir()
    file = tmp_path / "index" / "export.csv"
    file.write_text("image\na.png\n../index/export.csv\n")
    rows, _, rejected = import_csv(source("csv", file, {"image": "image", "root": str(tmp_path / "images")}), tmp_path, 1)
    assert rows[0]["image"] == str(tmp_path / "images" / "a.png") and Path(rows[0]["image"]).is_file()
    assert rejected[0]["row"] == 3 and "escapes" in rejected[0]["reason"]


def test_table_options_are_checked(tmp_path):
    file = tmp_path / "export.csv"
    file.write_text("image\na.png\n")
    assert "unknown key 'lable'" in error(import_csv, source("csv", file, {"image": "image", "lable": "y"}), tmp_path, 1)
    assert "required key 'image'" in error(import_csv, source("csv", file, {}), tmp_path, 1)
    assert "delimiter" in error(import_csv, source("csv", file, {"image": "image", "delimiter": ";;"}), tmp_path, 1)
    assert "unknown encoding" in error(import_csv, source("csv", file, {"image": "image", "encoding": "nope"}), tmp_path, 1)
    msg = error(import_jsonl, source("jsonl", file, {"image": "image", "delimiter": ";"}), tmp_path, 1)
    assert "unknown key 'delimiter'" in msg  # a csv-only option on a jsonl source
    assert "not found" in error(import_csv, source("csv", tmp_path / "nope.csv", {"image": "image"}), tmp_path, 1)
    file.write_text("image\n")
    assert "no data rows" in error(import_csv, source("csv", file, {"image": "image"}), tmp_path, 1)


def test_bad_tabular_values_become_missing_indicators_in_step_3(tmp_path):
    file = tmp_path / "index.jsonl"
    file.write_text('{"p": "1.png", "n": 1.0, "c": "a"}\n{"p": "2.png", "n": 3, "c": "b"}\n'
                    '{"p": "3.png", "n": "abc", "c": null}\n{"p": "4.png", "n": NaN, "c": 5}\n'
                    '{"p": "5.png", "n": null}\n{"p": "6.png", "n": "2.5", "c": "a"}\n')
    rows, schema, _ = import_jsonl(source("jsonl", file, {"image": "p", "numeric": ["n"], "categorical": ["c"]}),
                                   tmp_path, 1)
    assert [r["tabular"]["n"] for r in rows] == [1.0, 3, "abc", None, None, "2.5"]  # as given (NaN -> None)
    fitted = fit_schema(schema["numeric"], schema["categorical"], rows)
    encoder = TabularEncoder(fitted)
    encoded = [encoder.encode(r["tabular"]) for r in rows]
    assert [float(m[0]) for _, m, _ in encoded] == [0, 0, 1, 1, 1, 0]
    assert all(np.isfinite(x).all() for x, _, _ in encoded)
    assert [int(c[0]) for _, _, c in encoded] == [3, 4, 0, 2, 0, 3]  # vocab ['5', 'a', 'b'] -> 2, 3, 4; 0 = missing


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
