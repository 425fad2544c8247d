"""Engagement time series of a meme: parse what an index row gives (inline JSON, .npy or .csv file), check it.

`parse_series` is the one entry point of the importers. Every series becomes a float32 array of
shape (steps, channels); a missing hour is a row of NaN in every channel. Errors start with the
caller's `where` (file:line and column), name the hour (from 0) and channel, and say what to do.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import PipelineError
from core.params import check
from Step_1.readers import safe_image_path

CHANNEL_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class SeriesConfig:
    """Hourly engagement counts over the first `steps` hours of a meme, one column per channel."""

    steps: int = 72
    channels: list[str] = field(default_factory=lambda: ["views", "shares", "replies", "reports", "accounts"])

    def __post_init__(self) -> None:
        check(self.steps >= 2, f"steps must be >= 2, got {self.steps}")
        check(len(self.channels) > 0, "channels must list at least one channel")
        dup = sorted({c for c in self.channels if self.channels.count(c) > 1})
        check(not dup, f"channel names must be unique, repeated: {dup}")
        bad = [c for c in self.channels if not CHANNEL_PATTERN.match(c)]
        check(not bad, f"channel names may use only letters, digits and _, got {bad}")


def parse_series(value: Any, *, cfg: SeriesConfig, root: Path, where: str) -> np.ndarray | None:
    """The series of one row as float32 (steps, channels), or None when the row has none.

    Args:
        value: None / blank (no series), a list (inline JSON), a str starting with '[' (inline JSON as
            text, e.g. a CSV cell), or a path relative to `root` ending in .npy or .csv.
        where: prefix of every error message, e.g. "index.jsonl:3: series in column 'series'".
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise PipelineError(f"{where}: invalid JSON ({err.msg} at column {err.colno}); write the series as "
                                "a JSON list of hours, each a list of counts or null") from None
    if isinstance(value, list):
        return _from_json(value, cfg, where)
    if isinstance(value, str):
        return _from_file(value, cfg, root, where)
    raise PipelineError(f"{where}: expected a JSON list of hours, a path to a .npy or .csv file, or nothing; "
                        f"got {type(value).__name__} {value!r}")


def save_series(path: Path, array: np.ndarray) -> None:
    """Write `array` as float32 .npy (identical arrays give identical bytes), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:  # a file handle: np.save would append .npy to a path without it
        np.save(fh, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def load_series(path: Path) -> np.ndarray:
    """A series written by save_series: float32 (steps, channels), NaN rows for missing hours."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise PipelineError(f"{path}: cannot read the series ({err}); rerun Step 1 (prepare)") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype != np.float32:
        raise PipelineError(f"{path}: not a series written by Step 1 (expected 2-D float32); rerun Step 1 (prepare)")
    return array


# ---------------------------------------------------------------- the three forms

def _from_json(hours: list, cfg: SeriesConfig, where: str) -> np.ndarray:
    _check_hours(len(hours), cfg, where)
    width = len(cfg.channels)
    values = np.full((cfg.steps, width), np.nan)
    missing = np.zeros(cfg.steps, dtype=bool)
    for hour, entry in enumerate(hours):
        if entry is None:
            missing[hour] = True
            continue
        if not isinstance(entry, list):
            raise PipelineError(f"{where}: hour {hour}: expected a list of {width} counts ({_names(cfg)}) or null "
                                f"for a missing hour, got {entry!r}")
        if len(entry) != width:
            raise PipelineError(f"{where}: hour {hour} has {len(entry)} channels, expected {width} "
                                f"({_names(cfg)}; prepare.series.channels)")
        for col, (channel, number) in enumerate(zip(cfg.channels, entry)):
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise PipelineError(f"{where}: hour {hour}, channel '{channel}': {number!r} is not a number; "
                                    "write counts as JSON numbers")
            # a huge JSON integer does not fit a float64: clip it to a value _finish reports as too large
            values[hour, col] = number if isinstance(number, float) else max(-(2**129), min(number, 2**129))
    return _finish(values, missing, cfg, where, nan_hint="write a missing hour as null (the whole hour)")


def _from_file(raw: str, cfg: SeriesConfig, root: Path, where: str) -> np.ndarray:
    # The same lexical rule as image paths, so the two cannot drift apart.
    resolved, reason = safe_image_path(root, raw)
    if reason:
        raise PipelineError(f"{where}: {raw!r}: {reason.replace('image path', 'series path')} ({root}); "
                            "give a path relative to it")
    path = Path(resolved)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise PipelineError(f"{where}: {raw!r} is neither inline JSON (a list starting with '[') nor a path "
                            "ending in .npy or .csv; fix the value or convert the file")
    if not path.is_file():
        raise PipelineError(f"{where}: series file {path} not found; check the path (relative to {root})")
    where = f"{where} ({path})"
    return _from_npy(path, cfg, where) if suffix == ".npy" else _from_csv(path, cfg, where)


def _from_npy(path: Path, cfg: SeriesConfig, where: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise PipelineError(f"{where}: cannot read the .npy file ({err}); write it with numpy.save") from None
    if not isinstance(array, np.ndarray):  # np.load opens a zip (.npz) whatever the extension
        raise PipelineError(f"{where}: an .npz archive, not one array; write it with numpy.save")
    if array.dtype.kind not in "iuf":
        raise PipelineError(f"{where}: array of dtype {array.dtype} is not numeric; save integer or float counts")
    if array.ndim != 2:
        raise PipelineError(f"{where}: array of shape {array.shape} is not 2-D; expected (hours, channels) = "
                            f"({cfg.steps}, {len(cfg.channels)})")
    _check_hours(array.shape[0], cfg, where)
    _check_channels(array.shape[1], cfg, where)
    values = array.astype(np.float64)
    missing = np.isnan(values).all(axis=1)
    return _finish(values, missing, cfg, where, nan_hint="a missing hour must be NaN in every channel")


def _from_csv(path: Path, cfg: SeriesConfig, where: str) -> np.ndarray:
    try:
        text = path.read_bytes().decode("utf-8-sig")
        table = list(csv.reader(io.StringIO(text, newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise PipelineError(f"{where}: cannot read the CSV file ({err}); save it as UTF-8 CSV") from None
    if not table:
        raise PipelineError(f"{where}: empty file; expected a header line naming the channels {_names(cfg)}")
    header = [name.strip() for name in table[0]]
    unknown = [c for c in header if c not in cfg.channels]
    absent = [c for c in cfg.channels if c not in header]
    repeated = sorted({c for c in header if header.count(c) > 1})
    wrong = [f"{what} {names}" for what, names in (("unknown", unknown), ("missing", absent),
                                                      ("repeated", repeated)) if names]
    if wrong:
        raise PipelineError(f"{where}: header {header}: {', '.join(wrong)}; the header must name exactly the "
                            f"channels {_names(cfg)} (prepare.series.channels)")
    rows = table[1:]
    _check_hours(len(rows), cfg, where)
    order = [header.index(c) for c in cfg.channels]
    values = np.full((cfg.steps, len(cfg.channels)), np.nan)
    missing = np.zeros(cfg.steps, dtype=bool)
    for hour, fields in enumerate(rows):
        cells = [c.strip() for c in fields] or [""] * len(header)  # a blank line: every cell empty
        if len(cells) != len(header):
            raise PipelineError(f"{where}: hour {hour} has {len(cells)} fields, the header {len(header)}; "
                                "give one value per channel (all empty for a missing hour)")
        if not any(cells):
            missing[hour] = True
            continue
        for col, (channel, index) in enumerate(zip(cfg.channels, order)):
            cell = cells[index]
            if not cell:
                raise PipelineError(f"{where}: hour {hour}, channel '{channel}' is empty while other channels "
                                    "have values; fill it, or leave every cell of the hour empty if it is missing")
            try:
                values[hour, col] = float(cell)
            except ValueError:
                raise PipelineError(f"{where}: hour {hour}, channel '{channel}': {cell!r} is not a number") from None
    return _finish(values, missing, cfg, where, nan_hint="leave every cell of a missing hour empty")


# ---------------------------------------------------------------- checks shared by the three forms

def _names(cfg: SeriesConfig) -> str:
    return ", ".join(cfg.channels)


def _check_hours(count: int, cfg: SeriesConfig, where: str) -> None:
    if count != cfg.steps:
        raise PipelineError(f"{where}: has {count} hours, expected {cfg.steps} (prepare.series.steps); "
                            "give one entry per hour, missing hours included")


def _check_channels(count: int, cfg: SeriesConfig, where: str) -> None:
    if count != len(cfg.channels):
        raise PipelineError(f"{where}: has {count} channels, expected {len(cfg.channels)} ({_names(cfg)}; "
                            "prepare.series.channels)")


def _finish(values: np.ndarray, missing: np.ndarray, cfg: SeriesConfig, where: str, nan_hint: str) -> np.ndarray:
    """Check every present hour: finite, >= 0, within float32; then NaN rows for missing hours, as float32."""
    present = values[~missing]
    hours = np.flatnonzero(~missing)
    problems = [
        (np.isnan(present), "is NaN, which is not a count; " + nan_hint),
        (np.isinf(present), "is infinite; counts must be finite"),
        (present < 0, ": {:g} is negative; counts must be >= 0"),
        (present > FLOAT32_MAX, ": {:g} is too large for float32; check the unit of the counts"),
    ]
    for bad, problem in problems:
        if bad.any():
            row, col = np.argwhere(bad)[0]
            text = problem.format(present[row, col]) if problem.startswith(":") else " " + problem
            raise PipelineError(f"{where}: hour {hours[row]}, channel '{cfg.channels[col]}'{text}")
    values = values.astype(np.float32)  # (steps, channels)
    values[missing] = np.nan
    return values
