"""Persistent OCR cache: one JSON line per (image hash, settings key), append-only and crash-tolerant."""
from __future__ import annotations

import json
import os
from pathlib import Path


class OcrCache:
    """Maps '<sha256>:<settings key>' to an OCR result; a torn last line from a crash is ignored."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                        self.entries[entry["key"]] = entry
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue

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
