"""Check params.yaml and every configured source in seconds, before any stage runs (and before DVC removes
a stage's outputs to rerun it).

Builds every section into its dataclass (unknown keys, wrong types and impossible values fail naming the
key), checks each fusion head's params against the head, and for every source: the options of its kind,
that its path exists, and for csv / jsonl that the first row holds the mapped columns (a `reviews` source may have
no export yet; the labels of one it has must be classes of its label_map, or of the taxonomy). Exit code 2 with one
line per problem; 0 and "params ok" otherwise. `make run` calls it first.
"""
from __future__ import annotations

import argparse
import csv
import difflib
import json
import sys
from pathlib import Path

from core.errors import PipelineError
from core.params import build, load_params, section
from Step_1.config import PrepareConfig
from Step_1.importers import REVIEWS_FILE, CsvOptions, HatefulMemesOptions, JsonlOptions, ReviewsOptions
from Step_1.readers import jsonl_lines
from Step_1.synthetic.options import SyntheticOptions
from Step_2.ocr import OcrConfig
from Step_3.shard import ShardConfig
from Step_3.taxonomy import TaxonomyConfig
from Step_4.registry import EXPERTS
from Step_4.tabular.config import TabularModelConfig, TabularPretrainConfig
from Step_5.config import CrossvalConfig, FusionConfig
from Step_5.memory_config import MemoryConfig
from Step_5.models import FUSIONS, fusion_params
from Step_5.studies.unfamiliar import UnfamiliarConfig
from Step_6.config import EvaluateConfig
from Step_7.config import ServeConfig


def sections() -> list[tuple[type, str]]:
    """(dataclass, params.yaml section) of every section a stage reads; each expert kind's from the registry."""
    return [(PrepareConfig, "prepare"), (OcrConfig, "ocr"), (TaxonomyConfig, "taxonomy"), (ShardConfig, "shard"),
            *[(k.config, k.section) for k in EXPERTS.values()], (TabularModelConfig, "tabular_model"),
            (TabularPretrainConfig, "tabular_pretrain"), (FusionConfig, "fusion"), (CrossvalConfig, "crossval"),
            (UnfamiliarConfig, "unfamiliar"), (EvaluateConfig, "evaluate"), (MemoryConfig, "memory"),
            (ServeConfig, "serve")]


def check_source(source, classes: list[str] | None = None) -> None:
    """A source's options by kind, its path, (csv / jsonl) the mapped columns in its first row, and (reviews) every
    label against its label_map or, without one, the taxonomy's `classes`."""
    kinds = {"synthetic": SyntheticOptions, "hateful_memes": HatefulMemesOptions, "jsonl": JsonlOptions,
             "csv": CsvOptions, "reviews": ReviewsOptions}
    opts = build(kinds[source.kind], source.options, where=f"prepare.sources[{source.name}].options")
    if source.kind == "synthetic":
        return
    if source.kind == "reviews":
        _check_reviews(source, classes)
        return
    path = Path(source.path)
    if not path.exists():
        raise PipelineError(f"source '{source.name}': {path} does not exist")
    if source.kind in ("csv", "jsonl"):
        first = _first_row(path, opts, source.kind)
        missing = [c for c in opts.columns() if c not in first]
        if missing:
            raise PipelineError(f"source '{source.name}': {path}:1 has no column '{missing[0]}' (columns: "
                                f"{', '.join(first)}); fix the column mapping in its options")


def _check_reviews(source, classes: list[str] | None) -> None:
    """Every label of an exported reviews.jsonl is a known value; no export yet is fine (zero rows)."""
    file = Path(source.path) / REVIEWS_FILE
    allowed = sorted(source.label_map) if source.label_map else sorted(classes or [])
    if not file.is_file() or not allowed:
        return
    for line, row in jsonl_lines(file, "utf-8"):
        if row.get("label") not in allowed:
            raise PipelineError(f"source '{source.name}': {file}:{line}: label {row.get('label')!r} is not one of "
                                f"{allowed}; fix the row, or map it in the source's label_map")


def _first_row(path: Path, opts, kind: str) -> list[str]:
    with open(path, encoding=opts.encoding, newline="") as fh:
        if kind == "csv":
            return next(csv.reader(fh, delimiter=opts.delimiter), [])
        line = next((line for line in fh if line.strip()), "{}")
    try:
        return list(json.loads(line))
    except ValueError as err:
        raise PipelineError(f"{path}:1: not valid JSON: {err}") from None


def check(params: str) -> list[str]:
    """Every problem found, one line each (empty when all is well)."""
    problems = []
    loaded = load_params(params)
    if not isinstance(loaded, dict):
        return [f"{params}: not a mapping"]
    known = [name for _, name in sections()]
    for name in loaded:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            problems.append(f"{params}: unknown section '{name}'" + (f"; did you mean '{close[0]}'?" if close else
                                                                    f"; sections: {', '.join(known)}"))
    for cls, name in sections():
        try:
            cfg = section(cls, name, params)
        except PipelineError as err:
            problems.append(str(err))
            continue
        checks = {"prepare": lambda: [check_source(s, _classes(params)) for s in cfg.sources],
                  "fusion": lambda: [fusion_params(m, getattr(cfg, m)) for m in FUSIONS if hasattr(cfg, m)]}
        try:
            checks.get(name, lambda: None)()
        except PipelineError as err:
            problems.append(str(err))
    return problems


def _classes(params: str) -> list[str] | None:
    try:
        return section(TaxonomyConfig, "taxonomy", params).classes
    except PipelineError:
        return None  # reported with the taxonomy section


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.check_params", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file to check")
    args = parser.parse_args()
    try:
        problems = check(args.params)
    except PipelineError as err:
        problems = [str(err)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print("nothing was run; fix params.yaml (to get earlier outputs back: git checkout params.yaml && "
              "dvc checkout)", file=sys.stderr)
        sys.exit(2)
    print("params ok")


if __name__ == "__main__":
    main()
