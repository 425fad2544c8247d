"""Step 1 engagement series: each accepted form (inline JSON, .npy, .csv), each error case, and the importers."""
import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import PipelineError
from core.params import build
from Step_1.config import SourceConfig
from Step_1.importers import import_csv, import_hateful_memes, import_jsonl
from Step_1.series import SeriesConfig, load_series, parse_series, save_series

CFG = SeriesConfig(steps=3, channels=["views", "shares"])
WHERE = "index.jsonl:7: series in column 'eng'"
NAN_ROW = [np.nan, np.nan]


def parse(value, root: Path, cfg: SeriesConfig = CFG):
    return parse_series(value, cfg=cfg, root=root, where=WHERE)


def error(value, root: Path, cfg: SeriesConfig = CFG) -> str:
    with pytest.raises(PipelineError) as err:
        parse(value, root, cfg)
    msg = str(err.value)
    assert msg.startswith(WHERE + " ") or msg.startswith(WHERE + ":"), msg  # names the index file:line and column
    return msg


def source(kind: str, path: Path, options: dict, name: str = "src") -> SourceConfig:
    return build(SourceConfig, {"name": name, "kind": kind, "label_map": {"0": "benign"}, "path": str(path),
                                "options": options}, where="prepare.sources[0]")


def npy(path: Path, array) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(array))
    return path.name


# ---------------------------------------------------------------- accepted forms

def test_inline_list_and_json_text_give_the_same_array_with_null_as_nan_row(tmp_path):
    hours = [[10, 1], None, [12.5, 0]]
    from_list = parse(hours, tmp_path)
    from_text = parse(" " + json.dumps(hours), tmp_path)  # a CSV cell holds the JSON as text
    assert from_list.dtype == np.float32 and from_list.shape == (3, 2)
    np.testing.assert_array_equal(from_list, np.array([[10, 1], NAN_ROW, [12.5, 0]], dtype=np.float32))
    np.testing.assert_array_equal(from_text, from_list)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_series_is_none(tmp_path, value):
    assert parse(value, tmp_path) is None


def test_npy_file_any_numeric_dtype_and_all_nan_row_is_a_missing_hour(tmp_path):
    npy(tmp_path / "s" / "a.npy", np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int64))
    npy(tmp_path / "s" / "b.npy", np.array([[1, 2], NAN_ROW, [5, 6]], dtype=np.float64))
    np.testing.assert_array_equal(parse("s/a.npy", tmp_path), np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32))
    b = parse("s/b.npy", tmp_path)
    assert b.dtype == np.float32 and np.isnan(b[1]).all() and b[2].tolist() == [5, 6]


def test_csv_file_columns_reordered_and_empty_rows_are_missing_hours(tmp_path):
    # header in another order than the config; a row of empty cells and a blank line are missing hours
    (tmp_path / "a.csv").write_text("shares, views\n1,10\n,\n2,20\n", encoding="utf-8")
    np.testing.assert_array_equal(parse("a.csv", tmp_path), np.array([[10, 1], NAN_ROW, [20, 2]], dtype=np.float32))
    one = SeriesConfig(steps=3, channels=["views"])
    (tmp_path / "b.csv").write_text("views\n4\n\n6\n", encoding="utf-8")
    assert np.isnan(parse("b.csv", tmp_path, one)[1, 0]) and parse("b.csv", tmp_path, one)[2, 0] == 6


def test_save_and_load_round_trip_with_deterministic_bytes(tmp_path):
    array = np.array([[1, 2], NAN_ROW, [3, 4]], dtype=np.float64)
    save_series(tmp_path / "deep" / "x.npy", array)
    save_series(tmp_path / "y.npy", array.astype(np.float32))
    back = load_series(tmp_path / "deep" / "x.npy")
    assert back.dtype == np.float32 and back.shape == (3, 2) and np.isnan(back[1]).all()
    assert (tmp_path / "deep" / "x.npy").read_bytes() == (tmp_path / "y.npy").read_bytes()


# ---------------------------------------------------------------- errors

def test_wrong_number_of_hours_in_every_form(tmp_path):
    assert "has 2 hours, expected 3 (prepare.series.steps)" in error([[1, 2], [3, 4]], tmp_path)
    npy(tmp_path / "a.npy", np.ones((4, 2)))
    msg = error("a.npy", tmp_path)
    assert str(tmp_path / "a.npy") in msg and "has 4 hours, expected 3" in msg
    (tmp_path / "a.csv").write_text("views,shares\n1,2\n", encoding="utf-8")
    assert "has 1 hours, expected 3" in error("a.csv", tmp_path)


def test_wrong_number_of_channels(tmp_path):
    msg = error([[1, 2], [1, 2, 3], [1, 2]], tmp_path)
    assert "hour 1 has 3 channels, expected 2 (views, shares" in msg
    npy(tmp_path / "a.npy", np.ones((3, 5)))
    assert "has 5 channels, expected 2" in error("a.npy", tmp_path)
    npy(tmp_path / "b.npy", np.ones(6))
    assert "not 2-D" in error("b.npy", tmp_path)


def test_nan_is_rejected_with_how_to_write_a_missing_hour(tmp_path):
    msg = error("[[1, 2], [3, NaN], [5, 6]]", tmp_path)  # Python's json accepts the NaN token
    assert "hour 1, channel 'shares' is NaN" in msg and "write a missing hour as null" in msg
    npy(tmp_path / "a.npy", np.array([[1, 2], [np.nan, 4], [5, 6]]))
    msg = error("a.npy", tmp_path)
    assert "hour 1, channel 'views' is NaN" in msg and "NaN in every channel" in msg
    (tmp_path / "a.csv").write_text("views,shares\n1,2\n3,nan\n5,6\n", encoding="utf-8")
    assert "hour 1, channel 'shares' is NaN" in error("a.csv", tmp_path)


def test_infinity_is_rejected(tmp_path):
    assert "hour 2, channel 'views' is infinite" in error("[[1, 2], [3, 4], [-Infinity, 6]]", tmp_path)
    npy(tmp_path / "a.npy", np.array([[1, 2], [3, np.inf], [5, 6]]))
    assert "hour 1, channel 'shares' is infinite" in error("a.npy", tmp_path)
    assert "too large for float32" in error([[1, 2], [10**400, 4], [5, 6]], tmp_path)


def test_negative_count_is_rejected(tmp_path):
    msg = error([[1, 2], [3, 4], [5, -3]], tmp_path)
    assert "hour 2, channel 'shares': -3 is negative; counts must be >= 0" in msg
    (tmp_path / "a.csv").write_text("views,shares\n-1,2\n3,4\n5,6\n", encoding="utf-8")
    assert "hour 0, channel 'views': -1 is negative" in error("a.csv", tmp_path)


@pytest.mark.parametrize("bad", ["7", True, None, {"n": 1}])
def test_non_number_value_is_rejected(tmp_path, bad):
    hours = [[1, 2], [3, bad], [5, 6]] if bad is not None else [[1, 2], [3, 4], [5, None]]
    assert f"hour {1 if bad is not None else 2}, channel 'shares'" in error(hours, tmp_path)
    assert "is not a number" in error(hours, tmp_path)


def test_non_list_hour_and_non_series_values_are_rejected(tmp_path):
    assert "hour 1: expected a list of 2 counts (views, shares) or null" in error([[1, 2], 4, [5, 6]], tmp_path)
    for value in (5, 2.5, True, {"views": [1]}):
        assert "expected a JSON list of hours, a path to a .npy or .csv file" in error(value, tmp_path)
    assert "invalid JSON" in error("[[1, 2], [3, 4]", tmp_path)


def test_csv_string_and_partly_empty_rows(tmp_path):
    (tmp_path / "a.csv").write_text("views,shares\n1,2\n3,lots\n5,6\n", encoding="utf-8")
    assert "hour 1, channel 'shares': 'lots' is not a number" in error("a.csv", tmp_path)
    (tmp_path / "b.csv").write_text("views,shares\n1,2\n3,\n5,6\n", encoding="utf-8")
    msg = error("b.csv", tmp_path)
    assert str(tmp_path / "b.csv") in msg and "hour 1, channel 'shares' is empty" in msg
    assert "leave every cell of the hour empty" in msg
    (tmp_path / "c.csv").write_text("views,shares\n1,2\n3\n5,6\n", encoding="utf-8")
    assert "hour 1 has 1 fields, the header 2" in error("c.csv", tmp_path)


def test_csv_header_must_name_exactly_the_channels(tmp_path):
    (tmp_path / "a.csv").write_text("views,likes\n1,2\n3,4\n5,6\n", encoding="utf-8")
    msg = error("a.csv", tmp_path)
    assert "unknown ['likes']" in msg and "missing ['shares']" in msg and "views, shares" in msg
    (tmp_path / "b.csv").write_text("", encoding="utf-8")
    assert "empty file" in error("b.csv", tmp_path)


def test_missing_file_names_it(tmp_path):
    msg = error("series/none.npy", tmp_path)
    assert f"series file {tmp_path / 'series' / 'none.npy'} not found" in msg


@pytest.mark.parametrize("path, problem", [("../outside.npy", "escapes the dataset root"),
                                           ("/abs/olute.npy", "is absolute"),
                                           ("a/../../x.csv", "escapes the dataset root")])
def test_path_leaving_root_is_rejected(tmp_path, path, problem):
    root = tmp_path / "root"
    root.mkdir()
    npy(tmp_path / "outside.npy", np.ones((3, 2)))  # exists, but outside the root
    msg = error(path, root)
    assert "series path" in msg and problem in msg and f"({root}); give a path relative to it" in msg


def test_wrong_extension_is_rejected(tmp_path):
    (tmp_path / "a.txt").write_text("views,shares\n1,2\n3,4\n5,6\n")
    assert "ending in .npy or .csv" in error("a.txt", tmp_path)


def test_corrupt_or_unsuitable_npy_is_rejected(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"not an array at all")
    assert "cannot read the .npy file" in error("a.npy", tmp_path)
    np.save(tmp_path / "b.npy", np.array([[{"x": 1}] * 2] * 3, dtype=object))  # pickled objects
    assert "cannot read the .npy file" in error("b.npy", tmp_path)
    np.save(tmp_path / "c.npy", np.array([["1", "2"]] * 3))
    assert "is not numeric" in error("c.npy", tmp_path)
    (tmp_path / "d.csv").write_bytes(b"views,shares\n\xff\xfe,1\n")
    assert "cannot read the CSV file" in error("d.csv", tmp_path)


def test_series_config_is_checked():
    for bad in ({"steps": 1}, {"channels": []}, {"channels": ["a", "a"]}, {"channels": ["bad name"]}):
        with pytest.raises(PipelineError, match="params 'prepare.series'"):
            build(SeriesConfig, bad, where="prepare.series")


# ---------------------------------------------------------------- through the importers

def test_import_jsonl_writes_series_under_out_dir(tmp_path):
    data = tmp_path / "data"
    npy(data / "eng" / "b.npy", np.array([[4, 5], NAN_ROW, [6, 7]]))
    file = data / "index.jsonl"
    rows = [{"uid": "a 1", "img": "a.png", "eng": [[1, 2], None, [3, 4]]},
            {"uid": "b", "img": "b.png", "eng": "eng/b.npy"},
            {"uid": "c", "img": "c.png", "eng": None},
            {"uid": "d", "img": "d.png"},
            {"uid": "e", "img": "../e.png", "eng": [[9, 9]] * 3}]  # rejected row: no series written
    file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    got, _, rejected = import_jsonl(source("jsonl", file, {"image": "img", "id": "uid", "series": "eng"}), out, 1,
                                    CFG)
    by_id = {r["local_id"]: r for r in got}
    assert [r["row"] for r in rejected] == [5]
    assert by_id["a 1"]["series"] == str(out / "src" / "series" / "a_1.npy")  # id made safe like make_id
    assert by_id["c"]["series"] is None and by_id["d"]["series"] is None
    assert sorted(p.name for p in (out / "src" / "series").iterdir()) == ["a_1.npy", "b.npy"]
    np.testing.assert_array_equal(load_series(Path(by_id["a 1"]["series"])),
                                  np.array([[1, 2], NAN_ROW, [3, 4]], dtype=np.float32))
    np.testing.assert_array_equal(load_series(Path(by_id["b"]["series"])),
                                  np.array([[4, 5], NAN_ROW, [6, 7]], dtype=np.float32))


def test_import_csv_with_default_config_json_cell_and_csv_file(tmp_path):
    steps, channels = SeriesConfig().steps, SeriesConfig().channels
    table = np.arange(steps * len(channels), dtype=np.float64).reshape(steps, len(channels))
    lines = [",".join(reversed(channels))] + [",".join(str(v) for v in row[::-1]) for row in table]
    lines[3] = "," * (len(channels) - 1)  # hour 2 missing
    (tmp_path / "m2.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    inline = json.dumps([None] + [[1] * len(channels)] * (steps - 1)).replace('"', '""')
    file = tmp_path / "posts.csv"
    file.write_text(f'id,image,eng\nm1,m1.png,"{inline}"\nm2,m2.png,m2.csv\nm3,m3.png,\n', encoding="utf-8")
    rows, _, _ = import_csv(source("csv", file, {"image": "image", "id": "id", "series": "eng"}), tmp_path / "out", 1)
    m1, m2, m3 = rows
    first = load_series(Path(m1["series"]))
    assert first.shape == (steps, len(channels)) and np.isnan(first[0]).all() and (first[1:] == 1).all()
    second = load_series(Path(m2["series"]))
    expected = table.astype(np.float32)
    expected[2] = np.nan
    np.testing.assert_array_equal(second, expected)  # columns back in the configured order
    assert m3["series"] is None and Path(m2["series"]).parent == tmp_path / "out" / "src" / "series"


def test_import_error_names_index_file_line_and_column(tmp_path):
    file = tmp_path / "index.jsonl"
    file.write_text(json.dumps({"img": "a.png", "eng": [[1, 2]] * 3}) + "\n"
                    + json.dumps({"img": "b.png", "eng": [[1, 2]] * 2}) + "\n", encoding="utf-8")
    with pytest.raises(PipelineError) as err:
        import_jsonl(source("jsonl", file, {"image": "img", "series": "eng"}), tmp_path / "out", 1, CFG)
    assert str(err.value).startswith(f"{file}:2: series in column 'eng': has 2 hours, expected 3")
    file.write_text(json.dumps({"img": "a.png"}) + "\n", encoding="utf-8")  # mapped but in no row
    with pytest.raises(PipelineError, match="column 'eng' appears in no row"):
        import_jsonl(source("jsonl", file, {"image": "img", "series": "eng"}), tmp_path / "out", 1, CFG)


def test_rows_without_series_mapping_carry_none(tmp_path):
    file = tmp_path / "index.jsonl"
    file.write_text(json.dumps({"img": "a.png", "eng": [[1, 2]] * 3}) + "\n", encoding="utf-8")
    rows, _, _ = import_jsonl(source("jsonl", file, {"image": "img"}), tmp_path / "out", 1)
    assert rows[0]["series"] is None and not (tmp_path / "out").exists()
    hm = tmp_path / "hm"
    hm.mkdir()
    (hm / "train.jsonl").write_text(json.dumps({"id": 1, "img": "img/1.png", "label": 0}) + "\n")
    rows, _, _ = import_hateful_memes(source("hateful_memes", hm, {}), tmp_path / "out", 1)
    assert rows[0]["series"] is None
