"""Seeded, stratified splits that keep linked images (same bytes, same group) together.

train / val / test_seen are dealt by shard.fractions; val_unseen and test_unseen hold only rows a source marks as
such (memes built from material never seen in training, as Hateful Memes' dev_unseen and test_unseen): val_unseen
for model selection on unseen material, test_unseen for the report.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict

from core.errors import PipelineError

SPLITS = ("train", "val", "val_unseen", "test_seen", "test_unseen")
UNSEEN = ("val_unseen", "test_unseen")  # only what a source marks; optional, and a missing class only warns
DEALT = ("train", "val", "test_seen")  # the splits shard.fractions deals rows without an official split into
TESTS = ("test_seen", "test_unseen")
EVALUATED = ("val", "val_unseen", "test_seen", "test_unseen")
SELECTION = ("val", "val_unseen")  # early stopping, model selection, calibration: seen and unseen material, no test


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def link_groups(rows: list[dict], extra_links: list[tuple[int, int]] = ()) -> list[int]:
    """Component id per row: rows sharing an image hash, a group value, or an extra link are joined."""
    uf = _UnionFind(len(rows))
    first_seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        keys = [("sha256", row["sha256"])]
        if row.get("group") not in (None, ""):
            keys.append(("group", f"{row['source']}:{row['group']}"))
        for key in keys:
            if key in first_seen:
                uf.union(first_seen[key], i)
            else:
                first_seen[key] = i
    for a, b in extra_links:
        uf.union(a, b)
    return [uf.find(i) for i in range(len(rows))]


def assign_splits(rows: list[dict], labels: list[int], fractions: dict[str, float], seed: int,
                  components: list[int]) -> list[str]:
    """Split name per row. Official splits win; other components are dealt per (label, source) stratum.

    A linked group whose rows carry different official splits keeps them (rows without one follow the
    group's first official split), unless two of its rows are byte-identical images: that is an error.
    """
    members: dict[int, list[int]] = defaultdict(list)
    for i, comp in enumerate(components):
        members[comp].append(i)
    result: list[str | None] = [None] * len(rows)
    strata: dict[tuple, list[int]] = defaultdict(list)
    for comp, idx in sorted(members.items()):
        official = sorted({rows[i]["split"] for i in idx if rows[i].get("split")})
        if len(official) > 1:
            _check_identical_across_splits(rows, idx)
        if official:
            for i in idx:
                result[i] = rows[i].get("split") or official[0]
            continue
        first = idx[0]
        strata[(labels[first], rows[first]["source"])].append(comp)
    rng = random.Random(seed)
    for key in sorted(strata, key=str):
        comps = strata[key]
        rng.shuffle(comps)
        total = sum(len(members[c]) for c in comps)
        target = {s: fractions[s] * total for s in DEALT}
        filled = dict.fromkeys(DEALT, 0)
        for comp in comps:
            # the split furthest below its target share takes the next component
            split = max(DEALT, key=lambda s: (target[s] - filled[s]) / max(target[s], 1e-9) if target[s] > 0 else -math.inf)
            filled[split] += len(members[comp])
            for i in members[comp]:
                result[i] = split
    return result  # type: ignore[return-value]


def _check_identical_across_splits(rows: list[dict], idx: list[int]) -> None:
    by_hash: dict[str, set] = defaultdict(set)
    for i in idx:
        if rows[i].get("split"):
            by_hash[rows[i]["sha256"]].add(rows[i]["split"])
    for sha, splits in by_hash.items():
        if len(splits) > 1:
            ids = [rows[i]["id"] for i in idx if rows[i]["sha256"] == sha][:4]
            raise PipelineError(f"rows {ids} are the same image but their official splits differ ({sorted(splits)}); "
                                "fix the source split files or drop the duplicates")


def check_labelled(labels: list[int], splits: list[str], classes: list[str]) -> list[str]:
    """train, val and test_seen need labelled rows of every class (training, early stopping and metrics would be
    meaningless without them); val_unseen and test_unseen are optional. Returns warnings for one missing a class."""
    warnings = []
    for split in SPLITS:
        present = {y for y, s in zip(labels, splits) if s == split and y >= 0}
        missing = [classes[c] for c in range(len(classes)) if c not in present]
        if missing and split in UNSEEN:
            if present:
                warnings.append(f"split '{split}' has no labelled example of {missing}: its AUROC is undefined")
        elif missing:
            n = sum(1 for s in splits if s == split)
            raise PipelineError(f"split '{split}' has {n} rows but no labelled example of {missing}; add labelled data "
                                "for it (e.g. the dev/test files of an official split) or change shard.fractions")
    return warnings
