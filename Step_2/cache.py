"""Persistent OCR cache: one JSON line per (image hash, settings key), append-only and crash-tolerant.

Part files written by `python -m Step_2.ocr --part K/N` on other machines (`<stem>.part-K-of-N.jsonl` beside the
cache file) are read with it, so copying them into the cache folder merges their work."""
from __future__ import annotations

import json
import os
from pathlib import Path


class OcrCache:
    """Maps '<sha256>:<settings key>' to an OCR result; a torn last line from a crash is ignored."""

    def __init__(self, path: str | Path, *, write_to: str | Path | None = None):
        """path: the cache file (read with its part files); write_to: where new entries go (default: path)."""
        self.path = Path(write_to or path)
        self.entries: dict[str, dict] = {}
        main = Path(path)
        for file in [main, *sorted(main.parent.glob(f"{main.stem}.part-*-of-*{main.suffix}"))]:
            if file.is_file():
                self._load(file)

    def _load(self, file: Path) -> None:
        with open(file, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                    self.entries[entry["key"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    @staticmethod
    def part_file(path: str | Path, part: int, parts: int) -> Path:
        path = Path(path)
        return path.with_name(f"{path.stem}.part-{part}-of-{parts}{path.suffix}")

    @staticmethod
    def key(sha256: str, settings_key: str) -> str:
        return f"{sha256}:{settings_key}"

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def add_many(self, entries: list[dict]) -> None:
        """Append entries (each with a 'key') and flush them to disk."""
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            for entry in entries:
                fh.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
                self.entries[entry["key"]] = entry
            fh.flush()
            os.fsync(fh.fileno())
