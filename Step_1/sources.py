"""Importers: each source kind turns its input into unified records (see Step_1.records)."""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.errors import PipelineError
from core.params import build
from core.progress import progress
from Step_1.config import SourceConfig
from Step_1.importers import import_csv, import_hateful_memes, import_jsonl, import_reviews
from Step_1.series import SeriesConfig, save_series
from Step_1.synthetic.engagement import CHANNELS
from Step_1.synthetic.generate import make_engagement, make_meme
from Step_1.synthetic.metadata import CATEGORICAL_FIELDS, NUMERIC_FIELDS
from Step_1.synthetic.options import SyntheticOptions

# (source, out_dir, workers, series shape) -> (rows, schema, rejected rows); see import_synthetic and Step_1.importers.
Importer = Callable[[SourceConfig, Path, int, SeriesConfig], tuple[list[dict], dict, list[dict]]]


def _synthetic_worker(args: tuple[int, SyntheticOptions, int]) -> tuple[int, dict, bytes, np.ndarray | None]:
    index, opts, steps = args
    record, jpeg = make_meme(index, opts)
    return index, record, jpeg, make_engagement(record, index, opts, steps)


def import_synthetic(source: SourceConfig, out_dir: Path, workers: int,
                     series: SeriesConfig | None = None) -> tuple[list[dict], dict, list[dict]]:
    """Render the built-in synthetic memes into out_dir/<source>/images/ and their engagement series into
    out_dir/<source>/series/; returns (records, schema, [])."""
    opts = build(SyntheticOptions, source.options, where=f"prepare.sources[{source.name}].options")
    series = series or SeriesConfig()
    if tuple(series.channels) != CHANNELS:
        raise PipelineError(f"source '{source.name}': the synthetic series has the channels {list(CHANNELS)}, "
                            f"prepare.series.channels lists {series.channels}; set them to the synthetic ones")
    image_dir, series_dir = out_dir / source.name / "images", out_dir / source.name / "series"
    image_dir.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(opts.count - 1)))
    records = []
    jobs = ((i, opts, series.steps) for i in range(opts.count))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        results = pool.imap(_synthetic_worker, jobs, chunksize=16)
        bar = progress(results, total=opts.count, desc=f"prepare {source.name}", unit="meme")
        for index, record, jpeg, engagement in bar:
            local_id = f"{index:0{width}d}"
            path = image_dir / f"{local_id}.jpg"
            path.write_bytes(jpeg)
            series_path = None
            if engagement is not None:
                series_path = series_dir / f"{local_id}.npy"
                save_series(series_path, engagement)
            records.append({"local_id": local_id, "image": str(path), "split": None, "group": None,
                            "series": None if series_path is None else str(series_path), **record})
    schema = {"numeric": list(NUMERIC_FIELDS), "categorical": list(CATEGORICAL_FIELDS)}
    return records, schema, []


IMPORTERS: dict[str, Importer] = {"synthetic": import_synthetic, "hateful_memes": import_hateful_memes,
                                  "jsonl": import_jsonl, "csv": import_csv, "reviews": import_reviews}
