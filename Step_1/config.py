"""The `prepare` section of params.yaml as dataclasses."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from core.params import check
from Step_1.series import SeriesConfig

SOURCE_KINDS = ("synthetic", "hateful_memes", "jsonl", "csv")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class SourceConfig:
    """One data source; `options` are checked by the importer of its kind."""

    name: str
    kind: Literal["synthetic", "hateful_memes", "jsonl", "csv"]
    label_map: dict[str, str]
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(bool(NAME_PATTERN.match(self.name)), f"source name {self.name!r} may use only letters, digits and _")
        check(self.kind == "synthetic" or bool(self.path), f"source '{self.name}' of kind {self.kind} needs a path")


@dataclass
class PrepareConfig:
    sources: list[SourceConfig]
    workers: int = 2
    series: SeriesConfig = field(default_factory=SeriesConfig)  # engagement series: hours and channels

    def __post_init__(self) -> None:
        check(len(self.sources) > 0, "list at least one source")
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        check(not dup, f"source names must be unique, repeated: {dup}")
        check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")
