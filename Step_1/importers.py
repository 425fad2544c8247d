"""Importers for real data: the Hateful Memes folder layout, and any JSONL or CSV index file.

Every importer returns (rows, schema, rejected) as described in Step_1.sources. Images are not
opened here (Step 2 reads them and rejects the unreadable ones); a row whose image path is
absolute or leaves the source root is rejected with the reason, and the rest imports. A mapped
`series` column is checked by Step_1.series and saved as out_dir/<source>/series/<id>.npy.
"""
from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import PipelineError
from core.params import build, check
from Step_1.config import SourceConfig
from Step_1.readers import clean_text, csv_lines, finite_or_none, jsonl_lines, safe_image_path
from Step_1.records import SPLITS, make_id
from Step_1.series import SeriesConfig, parse_series, save_series

REVIEWS_FILE = "reviews.jsonl"  # written by `python -m Step_7.export` beside images/
HM_FILES = ("train.jsonl", "dev_seen.jsonl", "dev_unseen.jsonl", "test_seen.jsonl", "test_unseen.jsonl")
# file-name prefix -> official split; the first matching prefix wins (dev_unseen before dev, test_unseen before test)
HM_SPLITS = {"train": "train", "dev_unseen": "val_unseen", "dev": "val", "test_unseen": "test_unseen",
             "test": "test_seen"}


@dataclass
class HatefulMemesOptions:
    """Options of a `hateful_memes` source; `path` is the folder holding img/ and the JSONL files."""

    files: list[str] = field(default_factory=lambda: list(HM_FILES))
    max_text_chars: int = 2000

    def __post_init__(self) -> None:
        check(len(self.files) > 0, "files must list at least one JSONL file")
        for name in self.files:
            check(_hm_split(name) is not None,
                  f"file {name!r}: the name must start with train, dev or test (that gives its split)")
        check(self.max_text_chars >= 1, f"max_text_chars must be >= 1, got {self.max_text_chars}")


@dataclass
class JsonlOptions:
    """Options of a `jsonl` source: which field holds what. Only `image` is required.

    `root` (relative paths are taken from the working directory, like `path`) is the folder that
    image paths are relative to; default: the index file's folder.
    `series` is the column holding the meme's hourly engagement series (see Step_1.series): inline
    JSON (a list of hours, each a list of counts or null), or a path under `root` to a .npy or .csv
    file; empty or absent means the meme has none.
    """

    image: str
    id: str | None = None
    text: str | None = None
    label: str | None = None
    split: str | None = None
    group: str | None = None
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    root: str | None = None
    series: str | None = None
    encoding: str = "utf-8"
    max_text_chars: int = 2000

    def __post_init__(self) -> None:
        both = sorted(set(self.numeric) & set(self.categorical))
        check(not both, f"columns {both} are listed as both numeric and categorical")
        check(self.max_text_chars >= 1, f"max_text_chars must be >= 1, got {self.max_text_chars}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {self.encoding!r} (e.g. utf-8, utf-8-sig, cp1252, latin-1)") from None

    def columns(self) -> list[str]:
        """Every mapped column, once."""
        named = [self.image, self.id, self.text, self.label, self.split, self.group, self.series,
                 *self.numeric, *self.categorical]
        return list(dict.fromkeys(c for c in named if c is not None))


@dataclass
class CsvOptions(JsonlOptions):
    """Options of a `csv` source: those of `jsonl` plus the field `delimiter`."""

    delimiter: str = ","

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.delimiter) == 1, f"delimiter must be one character, got {self.delimiter!r}")


@dataclass
class ReviewsOptions:
    """Options of a `reviews` source; `path` is the folder `python -m Step_7.export` writes."""

    max_text_chars: int = 2000

    def __post_init__(self) -> None:
        check(self.max_text_chars >= 1, f"max_text_chars must be >= 1, got {self.max_text_chars}")


# ---------------------------------------------------------------- row helpers

def _required(obj: dict, column: str, file: Path, line: int) -> Any:
    if column not in obj:
        raise PipelineError(f"{file}:{line}: column '{column}' is missing from this row; "
                            "add it or fix the column mapping in the source's options")
    return obj[column]


def _check_duplicate(seen: dict[str, str], local_id: str, where: str) -> None:
    if local_id in seen:
        raise PipelineError(f"duplicate id '{local_id}' at {seen[local_id]} and {where}; ids must be unique within a source")
    seen[local_id] = where


def _hm_split(name: str) -> str | None:
    return next((split for prefix, split in HM_SPLITS.items() if name.startswith(prefix)), None)


def _reject(source: SourceConfig, file: Path, line: int, image: Any, reason: str) -> dict:
    return {"source": source.name, "file": str(file), "row": line, "image": image, "reason": reason}


# ---------------------------------------------------------------- importers

def import_hateful_memes(source: SourceConfig, out_dir: Path, workers: int,
                         series: SeriesConfig | None = None) -> tuple[list[dict], dict, list[dict]]:
    """The Hateful Memes layout: <path>/img/ and train / dev_* / test_* JSONL files (id, img, label, text).
    It has no engagement series: `series` is accepted for the common importer signature, every row gets None.

    Splits: train -> train, dev_seen -> val, dev_unseen -> val_unseen (model selection on unseen material; a meme
    in both dev files stays in val), test_seen -> test_seen, test_unseen -> test_unseen (any other test* file ->
    test_seen). An id repeated with the same img is one
    record (the first file wins); with another img it fails. Rows without `label` are unlabelled.
    """
    opts = build(HatefulMemesOptions, source.options, where=f"prepare.sources[{source.name}].options")
    root = Path(source.path).resolve()
    present = [root / name for name in opts.files if (root / name).is_file()]
    if not present:
        raise PipelineError(f"{root}: none of the Hateful Memes files {opts.files} is there; "
                            "point the source's `path` at the folder with img/ and the JSONL files")
    rows, rejected = [], []
    seen: dict[str, tuple[Any, Path, str, Any]] = {}  # id -> (img, file, "file:line", label)
    for file in present:
        split = _hm_split(file.name)
        for line, obj in jsonl_lines(file, "utf-8"):
            local_id = str(_required(obj, "id", file, line))
            img = _required(obj, "img", file, line)
            label = finite_or_none(obj.get("label"))
            where = f"{file}:{line}"
            if local_id in seen:
                first_img, first_file, first_where, first_label = seen[local_id]
                if first_file == file:
                    raise PipelineError(f"duplicate id '{local_id}' at {first_where} and {where}; "
                                        "ids must be unique within a file")
                if img != first_img:
                    raise PipelineError(f"id '{local_id}' has image {first_img!r} at {first_where} but {img!r} at "
                                        f"{where}; one id must name one meme")
                if label is not None and first_label is not None and label != first_label:
                    raise PipelineError(f"id '{local_id}' has label {first_label!r} at {first_where} but {label!r} "
                                        f"at {where}; fix the conflicting label")
                continue  # the same meme listed again (dev_seen / dev_unseen overlap): the first file wins
            seen[local_id] = (img, file, where, label)
            path, reason = safe_image_path(root, img)
            if reason:
                rejected.append(_reject(source, file, line, img, reason))
                continue
            rows.append({"local_id": local_id, "image": path, "text": clean_text(obj.get("text"), opts.max_text_chars),
                         "label": label, "split": split, "group": None, "tabular": {}, "series": None,
                         "meta": {"file": file.name, "line": line}})
    return rows, {"numeric": [], "categorical": []}, rejected


def _import_table(source: SourceConfig, lines: Iterator[tuple[int, dict]], opts: JsonlOptions, file: Path,
                  check_rows: bool, out_dir: Path, series: SeriesConfig) -> tuple[list[dict], dict, list[dict]]:
    """Rows of a JSONL or CSV index through the column mapping in `opts`; series go to out_dir/<source>/series/."""
    root = Path(opts.root).resolve() if opts.root else file.parent
    rows, rejected, seen = [], [], {}
    present: set[str] = set()
    for line, obj in lines:
        present.update(obj)
        where = f"{file}:{line}"
        image = _required(obj, opts.image, file, line)
        local_id = str(line) if opts.id is None else _required(obj, opts.id, file, line)
        if not isinstance(local_id, (str, int)) or isinstance(local_id, bool) or not str(local_id).strip():
            raise PipelineError(f"{where}: id in column '{opts.id}' must be a non-empty string or integer, got {local_id!r}")
        local_id = str(local_id)
        label = None if opts.label is None else finite_or_none(_required(obj, opts.label, file, line))
        split = obj.get(opts.split) if opts.split else None
        if split in ("", None):
            split = None
        elif split not in SPLITS:
            raise PipelineError(f"{where}: split {split!r} in column '{opts.split}' is not one of {list(SPLITS)} "
                                "(or empty for no official split)")
        group = obj.get(opts.group) if opts.group else None
        _check_duplicate(seen, local_id, where)
        path, reason = safe_image_path(root, image)
        if reason:
            rejected.append(_reject(source, file, line, image, reason))
            continue
        series_path = None
        if opts.series:
            array = parse_series(obj.get(opts.series), cfg=series, root=root,
                                 where=f"{where}: series in column '{opts.series}'")
            if array is not None:
                safe_id = make_id(source.name, local_id)[len(source.name) + 1:]  # the record id less '<source>-'
                series_path = out_dir / source.name / "series" / f"{safe_id}.npy"
                save_series(series_path, array)
                series_path = str(series_path)
        rows.append({"local_id": local_id, "image": path,
                     "text": clean_text(obj.get(opts.text), opts.max_text_chars) if opts.text else None,
                     "label": label, "split": split, "group": None if group in ("", None) else str(group),
                     "tabular": {c: finite_or_none(obj.get(c)) for c in (*opts.numeric, *opts.categorical)},
                     "series": series_path, "meta": {"file": file.name, "line": line}})
    if not rows and not rejected:
        raise PipelineError(f"{file}: no data rows; check the source's `path`")
    if check_rows:
        absent = [c for c in opts.columns() if c not in present]
        if absent:
            raise PipelineError(f"{file}: column '{absent[0]}' appears in no row; fix the column mapping in "
                                f"prepare.sources[{source.name}].options")
    return rows, {"numeric": list(opts.numeric), "categorical": list(opts.categorical)}, rejected


def import_jsonl(source: SourceConfig, out_dir: Path, workers: int,
                 series: SeriesConfig | None = None) -> tuple[list[dict], dict, list[dict]]:
    """One JSON object per line; `image` (and `id`, `label` when mapped) must be in every row,
    the other mapped fields may be absent from a row (missing value) but not from all rows."""
    opts = build(JsonlOptions, source.options, where=f"prepare.sources[{source.name}].options")
    file = Path(source.path).resolve()
    return _import_table(source, jsonl_lines(file, opts.encoding), opts, file, check_rows=True,
                         out_dir=out_dir, series=series or SeriesConfig())


def import_csv(source: SourceConfig, out_dir: Path, workers: int,
               series: SeriesConfig | None = None) -> tuple[list[dict], dict, list[dict]]:
    """A CSV file with a header line; every mapped column must be in the header. Values stay strings."""
    opts = build(CsvOptions, source.options, where=f"prepare.sources[{source.name}].options")
    file = Path(source.path).resolve()
    lines = csv_lines(file, opts.encoding, opts.delimiter, opts.columns())
    return _import_table(source, lines, opts, file, check_rows=False, out_dir=out_dir,
                         series=series or SeriesConfig())


def import_reviews(source: SourceConfig, out_dir: Path, workers: int,
                   series: SeriesConfig | None = None) -> tuple[list[dict], dict, list[dict]]:
    """Memes reviewed in Step 7, exported to <path>/reviews.jsonl (id, image: a path under <path>, text, label: a
    class name, or a key of label_map when one is given). No export yet: zero rows. Rows carry no split (the shard
    stage assigns one) and no group."""
    opts = build(ReviewsOptions, source.options, where=f"prepare.sources[{source.name}].options")
    file = Path(source.path).resolve() / REVIEWS_FILE
    lines = list(jsonl_lines(file, "utf-8")) if file.is_file() else []
    if not lines:
        print(f"source '{source.name}': no reviewed memes in {file} yet (python -m Step_7.export writes them), 0 rows")
        return [], {"numeric": [], "categorical": []}, []
    table = JsonlOptions(image="image", id="id", text="text", label="label", max_text_chars=opts.max_text_chars)
    rows, schema, rejected = _import_table(source, iter(lines), table, file, check_rows=True, out_dir=out_dir,
                                           series=series or SeriesConfig())
    for row in rows:
        label, where = row["label"], f"{file}:{row['meta']['line']}"
        if not isinstance(label, str) or not label.strip():
            raise PipelineError(f"{where}: label {label!r} is not a class name; fix the row or export it again "
                                "(python -m Step_7.export)")
        if source.label_map and label not in source.label_map:
            raise PipelineError(f"{where}: label {label!r} is not in the label_map of source '{source.name}'; "
                                f"allowed values: {sorted(source.label_map)}")
    return rows, schema, rejected
