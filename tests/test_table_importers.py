"""Step 1 importers for exported tables (jsonl, csv): column mapping, bad rows, encodings, text cleaning, image
paths, options and tabular values; each bad-input case on a real file."""
from pathlib import Path

import numpy as np
import pytest

from Step_1.importers import import_csv, import_jsonl
from Step_3.tabular import TabularSchema, fit_schema
from tests.test_importers import error, png, source, write_jsonl

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
    assert f"{file}:2" in msg and "'dev'" in msg and "['train', 'val', 'val_unseen', 'test_seen', 'test_unseen']" in msg


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


# ---------------------------------------------------------------- both kinds

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
    encoder = TabularSchema(fitted)
    encoded = [encoder.encode(r["tabular"]) for r in rows]
    assert [float(m[0]) for _, m, _ in encoded] == [0, 0, 1, 1, 1, 0]
    assert all(np.isfinite(x).all() for x, _, _ in encoded)
    assert [int(c[0]) for _, _, c in encoded] == [3, 4, 0, 2, 0, 3]  # vocab ['5', 'a', 'b'] -> 2, 3, 4; 0 = missing
