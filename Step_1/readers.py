"""Helpers shared by the importers: decode an index file, read its JSONL or CSV rows, check one value.

Errors name file:line and say how to fix the source's options or the file.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import PipelineError


def read_text(file: Path, encoding: str) -> str:
    """The whole file decoded; a decoding error names the line and suggests the `encoding` option."""
    if not file.is_file():
        raise PipelineError(f"{file}: file not found; check the source's `path`")
    data = file.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start:err.end].hex(" ")
        raise PipelineError(f"{file}:{line}: bytes {bad} are not valid {encoding}; set the source's option "
                            f"`encoding` to the file's encoding (e.g. encoding: cp1252 or latin-1)") from None
    return text.removeprefix("\ufeff")  # a byte-order mark is not part of the first field


def jsonl_lines(file: Path, encoding: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line; invalid JSON or a non-object fails naming file:line."""
    for number, line in enumerate(read_text(file, encoding).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise PipelineError(f"{file}:{number}: invalid JSON ({err.msg} at column {err.colno}); "
                                "fix the line or remove it") from None
        if not isinstance(obj, dict):
            raise PipelineError(f"{file}:{number}: expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def csv_lines(file: Path, encoding: str, delimiter: str, columns: list[str]) -> Iterator[tuple[int, dict]]:
    """(line where the row starts, {header: value}) for every non-blank row; header = line 1.

    Mapped `columns` missing from the header, or a row with a different number of fields than
    the header, fail naming file:line.
    """
    reader = csv.reader(io.StringIO(read_text(file, encoding), newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise PipelineError(f"{file}: empty file; expected a header line with the column names")
        missing = [c for c in columns if c not in header]
        if missing:
            raise PipelineError(f"{file}:1: column '{missing[0]}' is not in the header {header}; "
                                "fix the column mapping in the source's options (or the `delimiter`)")
        repeated = sorted({c for c in columns if header.count(c) > 1})
        if repeated:
            raise PipelineError(f"{file}:1: mapped columns {repeated} appear more than once in the header")
        end = reader.line_num
        for fields in reader:
            start, end = end + 1, reader.line_num
            if not fields:
                continue
            if len(fields) != len(header):
                where = f"column '{header[len(fields)]}' is missing" if len(fields) < len(header) else "extra fields"
                raise PipelineError(f"{file}:{start}: {where}: the row has {len(fields)} fields, the header "
                                    f"{len(header)}; quote fields that contain the delimiter or line breaks")
            yield start, dict(zip(header, fields))
    except csv.Error as err:
        raise PipelineError(f"{file}:{reader.line_num}: malformed CSV ({err})") from None


def safe_image_path(root: Path, raw: Any) -> tuple[str | None, str | None]:
    """(resolved path under root, None) or (None, reason to reject the row).

    The check is lexical: absolute paths and paths whose `..` parts leave root are rejected;
    symbolic links inside the dataset folder are the dataset's own business and are followed.
    """
    if not isinstance(raw, str) or not raw.strip():
        return None, f"image path is empty or not a string: {raw!r}"
    if os.path.isabs(raw):
        return None, "image path is absolute; it must be relative to the dataset root"
    rel = os.path.normpath(raw)
    if rel == ".." or rel.startswith(".." + os.sep):
        return None, "image path escapes the dataset root"
    if rel == ".":
        return None, "image path names the dataset root, not a file"
    return str(root / rel), None


def clean_text(value: Any, max_chars: int) -> str | None:
    """Gold text kept exactly, None when empty or whitespace-only, cut to max_chars characters."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        return None
    return text[:max_chars]  # str indices are code points: the cut never splits a character


def finite_or_none(value: Any) -> Any:
    """The value as given, except NaN / ±Infinity (JSON extensions) become None: records are strict JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
