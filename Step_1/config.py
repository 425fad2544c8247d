"""The `prepare` section of params.yaml as dataclasses."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from core.params import check
from Step_1.series import SeriesConfig

SOURCE_KINDS = ("synthetic", "hateful_memes", "jsonl", "csv", "reviews")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class SourceConfig:
    """One data source; `options` are checked by the importer of its kind. `label_map` (the source's label value ->
    a class of taxonomy.classes) may be left out for kind `reviews` only, whose labels are class names already."""

    name: str
    kind: Literal["synthetic", "hateful_memes", "jsonl", "csv", "reviews"]
    label_map: dict[str, str] | None = None
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(bool(NAME_PATTERN.match(self.name)), f"source name {self.name!r} may use only letters, digits and _")
        check(self.kind == "synthetic" or bool(self.path), f"source '{self.name}' of kind {self.kind} needs a path")
        check(self.label_map is not None or self.kind == "reviews",
              f"source '{self.name}' needs a label_map (its label value -> a class of taxonomy.classes)")
        self.label_map = self.label_map or {}  # empty for `reviews`: class names map to themselves (Step_3.taxonomy)


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
