"""The unified record every source produces, and the checks applied to all of them."""
from __future__ import annotations

import re

from core.errors import PipelineError

# series: path of the meme's engagement series (.npy, hours x channels, NaN rows = missing hours) or None
RECORD_KEYS = ("id", "source", "image", "text", "label", "split", "group", "tabular", "series", "meta")
SPLITS = ("train", "val", "val_unseen", "test_seen", "test_unseen")
SPLIT_ALIASES = {"test": "test_seen", "dev": "val", "validation": "val"}  # older exports name them so
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(value) -> str:
    """`value` as text safe for file and tar member names: characters other than letters, digits, _ and - as '_'."""
    return _UNSAFE.sub("_", str(value))


def make_id(source: str, local_id: str) -> str:
    """A sample id safe for tar member names: '<source>-<local id>' with other characters as '_'."""
    return f"{source}-{safe_name(local_id)}"


def unify(source: str, raw: dict) -> dict:
    """Fill a raw importer row into the unified record layout."""
    record = {key: raw.get(key) for key in RECORD_KEYS}
    record["id"] = make_id(source, raw["local_id"])
    record["source"] = source
    record["tabular"] = raw.get("tabular") or {}
    record["meta"] = raw.get("meta") or {}
    record["split"] = SPLIT_ALIASES.get(record["split"], record["split"])
    if record["split"] is not None and record["split"] not in SPLITS:
        raise PipelineError(f"source '{source}', row {raw['local_id']}: split {record['split']!r} is not one of {SPLITS}")
    return record


def check_unique_ids(records: list[dict]) -> None:
    """Fail naming both rows when two records share an id."""
    seen: dict[str, dict] = {}
    for record in records:
        other = seen.get(record["id"])
        if other is not None:
            raise PipelineError(
                f"duplicate id '{record['id']}': rows with images {other['image']} and {record['image']}; "
                "make ids unique within each source")
        seen[record["id"]] = record
