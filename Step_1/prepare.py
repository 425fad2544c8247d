"""Stage `prepare`: import every source in params.yaml into data/prepared/.

Outputs (in --out): <source>/images/… for generated sources, <source>/series/<id>.npy (engagement series,
generated or imported), records.jsonl (one unified record per meme), schema.json (numeric and categorical
tabular fields over all sources, the series shape) and
rejected.jsonl (index rows that could not be used, with the reason; Step 2 adds them to
data/rejected.json and counts them against ocr.max_reject_fraction).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.cli import run_cli
from core.errors import PipelineError
from core.files import atomic_dir, clean_stale_temps, write_json, write_jsonl
from core.params import section
from Step_1.config import PrepareConfig
from Step_1.records import check_unique_ids, unify
from Step_1.sources import IMPORTERS


def merge_schemas(schemas: list[dict]) -> dict:
    """Union of the sources' tabular fields; a field may not be numeric in one source and categorical in another."""
    numeric: list[str] = []
    categorical: list[str] = []
    for schema in schemas:
        numeric += [f for f in schema["numeric"] if f not in numeric]
        categorical += [f for f in schema["categorical"] if f not in categorical]
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise PipelineError(f"tabular fields {both} are numeric in one source and categorical in another")
    return {"numeric": numeric, "categorical": categorical}


def prepare(cfg: PrepareConfig, out: Path) -> dict:
    """Import all sources into `out` atomically; returns a summary."""
    clean_stale_temps(out.parent, out.name)
    started = time.perf_counter()
    with atomic_dir(out) as tmp:
        records, schemas, per_source, rejected = [], [], {}, []
        for source in cfg.sources:
            raw_rows, schema, source_rejected = IMPORTERS[source.kind](source, tmp, cfg.workers, cfg.series)
            rejected += source_rejected
            unified = [unify(source.name, row) for row in raw_rows]
            # Images and series written into the temp dir must point at their final place.
            for record in unified:
                for key in ("image", "series"):
                    if record[key] and record[key].startswith(str(tmp)):
                        record[key] = str(out / Path(record[key]).relative_to(tmp))
            records += unified
            schemas.append(schema)
            per_source[source.name] = len(unified)
        check_unique_ids(records)
        write_jsonl(tmp / "records.jsonl", records)
        write_json(tmp / "schema.json", {**merge_schemas(schemas), "series": {
            "steps": cfg.series.steps, "channels": list(cfg.series.channels),
            "with_series": sum(r["series"] is not None for r in records)}})
        write_jsonl(tmp / "rejected.jsonl", rejected)
    return {"records": len(records), "per_source": per_source, "rejected": len(rejected),
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_1.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (section 'prepare')")
    parser.add_argument("--out", default="data/prepared", help="output folder (default: data/prepared)")
    args = parser.parse_args()
    cfg = section(PrepareConfig, "prepare", args.params)
    summary = prepare(cfg, Path(args.out))
    print(f"prepared {summary['records']} records {summary['per_source']}, {summary['rejected']} index rows rejected "
          f"(see {args.out}/rejected.jsonl), in {summary['seconds']} s")


if __name__ == "__main__":
    run_cli(main)
