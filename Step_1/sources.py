"""Importers: each source kind turns its input into unified records (see Step_1.records)."""
from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Callable


from core.params import build
from core.progress import progress
from Step_1.config import SourceConfig
from Step_1.importers import import_csv, import_hateful_memes, import_jsonl
from Step_1.synthetic.generate import CATEGORICAL_FIELDS, NUMERIC_FIELDS, SyntheticOptions, make_meme

# (source, out_dir, workers) -> (rows, schema, rejected rows); see import_synthetic and Step_1.importers.
Importer = Callable[[SourceConfig, Path, int], tuple[list[dict], dict, list[dict]]]


def _synthetic_worker(args: tuple[int, SyntheticOptions]) -> tuple[int, dict, bytes]:
    index, opts = args
    record, jpeg = make_meme(index, opts)
    return index, record, jpeg


def import_synthetic(source: SourceConfig, out_dir: Path, workers: int) -> tuple[list[dict], dict, list[dict]]:
    """Render the built-in synthetic memes into out_dir/<source>/images/; returns (records, schema, [])."""
    opts = build(SyntheticOptions, source.options, where=f"prepare.sources[{source.name}].options")
    image_dir = out_dir / source.name / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(opts.count - 1)))
    records = []
    jobs = ((i, opts) for i in range(opts.count))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        results = pool.imap(_synthetic_worker, jobs, chunksize=16)
        bar = progress(results, total=opts.count, desc=f"prepare {source.name}", unit="meme")
        for index, record, jpeg in bar:
            local_id = f"{index:0{width}d}"
            path = image_dir / f"{local_id}.jpg"
            path.write_bytes(jpeg)
            records.append({"local_id": local_id, "image": str(path), "split": None, "group": None, **record})
    schema = {"numeric": list(NUMERIC_FIELDS), "categorical": list(CATEGORICAL_FIELDS)}
    return records, schema, []


IMPORTERS: dict[str, Importer] = {"synthetic": import_synthetic, "hateful_memes": import_hateful_memes,
                                  "jsonl": import_jsonl, "csv": import_csv}
