"""Stage `shard`: taxonomy, splits and byte-reproducible WebDataset shards.

Reads the manifest and OCR results from Step 2. Writes data/label_taxonomy.json,
data/splits.json and data/shards/ with {train,val,test_seen,test_unseen}/<split>-NNNNNN.tar plus meta.json
(counts, classes, tabular schema with train-only statistics) for later stages.
Each sample: __key__ = id, the image (original JPEG/PNG bytes, or a normalised PNG when the
source needed conversion), txt (OCR or gold text, see shard.text_source), json (id,
label, true_label (-1 unless the source knows it), the source's meta, tabular fields, source,
OCR confidence, gold text) and, for a meme with an engagement series, series.npy (float32 hours x
channels, NaN rows for missing hours; meta.json names the hours and channels).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import webdataset as wds

from core.cli import run_cli
from core.errors import PipelineError
from core.files import atomic_dir, clean_stale_temps, dumps_json, read_json, read_jsonl, write_json
from core.params import check, section
from core.progress import progress
from Step_1.config import PrepareConfig
from Step_1.series import SeriesConfig
from Step_2.images import read_image
from Step_2.ocr import OcrConfig
from Step_2.phash import near_duplicate_pairs
from Step_3.splits import DEALT, SPLITS, assign_splits, check_labelled, link_groups
from Step_3.tabular import TabularSchema, fit_schema
from Step_3.taxonomy import UNLABELLED, TaxonomyConfig, build_taxonomy, map_label


@dataclass
class ShardConfig:
    seed: int = 7
    fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "val": 0.12, "test_seen": 0.18})
    text_source: Literal["ocr", "gold"] = "ocr"
    maxcount: int = 500
    near_duplicate_distance: int = 4  # pHash bits; images this close share a split (-1: exact bytes only)

    def __post_init__(self) -> None:
        check(set(self.fractions) == set(DEALT), f"fractions need exactly the keys {list(DEALT)} (test_unseen holds "
                                                 "only rows a source marks so)")
        check(all(v >= 0 for v in self.fractions.values()), "fractions must be non-negative")
        check(math.isclose(sum(self.fractions.values()), 1.0, abs_tol=1e-6),
              f"fractions must sum to 1, got {sum(self.fractions.values()):.4f}")
        check(self.maxcount >= 1, f"maxcount must be >= 1, got {self.maxcount}")
        check(-1 <= self.near_duplicate_distance <= 32, "near_duplicate_distance must be in [-1, 32]")


IMAGE_EXT = {"JPEG": "jpg", "PNG": "png"}


def unchanged_bytes(path: str, sha256: str | None, sample_id: str) -> bytes:
    """The file's bytes; fails when it changed or vanished since the ocr stage hashed it."""
    data = Path(path).read_bytes() if Path(path).is_file() else b""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise PipelineError(f"{path} changed or vanished since the ocr stage read it (id '{sample_id}'); "
                            "rerun the pipeline (dvc repro)")
    return data


def image_payload(row: dict, max_pixels: int) -> tuple[str, bytes]:
    """(extension, bytes) stored in the shard: the original bytes when the OCR stage found them plain (no
    second decode), else the normalised PNG. Fails when the file changed since the OCR stage read it."""
    data = unchanged_bytes(row["image"], row["sha256"], row["id"])
    if not row["needs_conversion"]:
        return IMAGE_EXT[row["format"]], data
    _, rgb, _ = read_image(row["image"], max_pixels)
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return "png", buffer.getvalue()


def series_payload(row: dict, shape: tuple[int, int]) -> bytes | None:
    """The .npy bytes of the row's engagement series (None without one). Fails when the file changed since the ocr
    stage hashed it or does not have the shape in the prepared schema."""
    if not row.get("series"):
        return None
    path = row["series"]
    data = unchanged_bytes(path, row.get("series_sha256"), row["id"])
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as err:
        raise PipelineError(f"{path} (id '{row['id']}') is not a readable .npy series: {err}; rerun the prepare stage") from err
    if array.shape != shape or array.dtype != np.float32:
        raise PipelineError(f"{path} (id '{row['id']}') holds {array.dtype} {array.shape}, expected float32 {shape} "
                            "(prepare.series); rerun the prepare stage")
    return data


def build_samples(manifest: list[dict], ocr: list[dict], taxonomy: dict, cfg: ShardConfig) -> tuple[list[dict], list[int]]:
    """Join manifest and OCR rows; returns the joined rows and their unified label ids."""
    by_id = {row["id"]: row for row in ocr}
    rows, labels = [], []
    for row in manifest:
        hit = by_id.get(row["id"])
        if hit is None:
            raise PipelineError(f"id '{row['id']}' is in the manifest but not in the OCR results; rerun the ocr stage")
        text = row["gold_text"] if cfg.text_source == "gold" and row["gold_text"] else hit["text"]
        where = f"manifest row '{row['id']}'"
        # a source that knows the truth behind its (noisy) labels, as the synthetic one does, records it in meta
        true = map_label(taxonomy, row["source"], (row.get("meta") or {}).get("true_label"), where=where)
        rows.append({**row, "text": text or "", "ocr_text": hit["text"], "ocr_confidence": hit["confidence"],
                     "true_label": true})
        labels.append(map_label(taxonomy, row["source"], row["label"], where=where))
    return rows, labels


def write_shards(rows: list[dict], labels: list[int], splits: list[str], out: Path, cfg: ShardConfig,
                 max_pixels: int, series_shape: tuple[int, int] = (72, 5)) -> dict[str, list[int]]:
    """Write every split's shards into `out` (an empty folder); returns the samples per shard of each split."""
    order = sorted(range(len(rows)), key=lambda i: rows[i]["id"])
    random.Random(cfg.seed).shuffle(order)  # mixed shards, same order every run
    shard_sizes = {}
    for split in SPLITS:
        (out / split).mkdir(parents=True)
        members = [i for i in order if splits[i] == split]
        pattern = str(out / split / f"{split}-%06d.tar")
        with wds.ShardWriter(pattern, maxcount=cfg.maxcount, verbose=0, mtime=0) as sink:
            for i in progress(members, desc=f"shard {split}", unit="sample"):
                row = rows[i]
                ext, payload = image_payload(row, max_pixels)
                record = {"id": row["id"], "label": labels[i], "true_label": row["true_label"], "meta": row["meta"],
                          "source": row["source"], "tabular": row["tabular"],
                          "ocr_confidence": row["ocr_confidence"], "gold_text": row["gold_text"], "split": split}
                sample = {"__key__": row["id"], ext: payload, "txt": row["text"].encode("utf-8"),
                          "json": dumps_json(record).encode("utf-8")}
                series = series_payload(row, series_shape)
                if series is not None:
                    sample["series.npy"] = series
                sink.write(sample)
        shard_sizes[split] = [min(cfg.maxcount, len(members) - start) for start in range(0, len(members), cfg.maxcount)]
        if not members:
            for empty in (out / split).glob("*.tar"):
                empty.unlink()
    return shard_sizes


def shard_pattern(split: str, n_shards: int) -> str:
    """The brace pattern naming a split's shards relative to the shard folder ('' when there are none)."""
    return f"{split}/{split}-{{000000..{n_shards - 1:06d}}}.tar" if n_shards else ""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m Step_3.shard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (sections shard, taxonomy, prepare.sources)")
    parser.add_argument("--manifest", default="data/manifest.jsonl")
    parser.add_argument("--ocr", default="data/ocr.jsonl")
    parser.add_argument("--schema", default="data/prepared/schema.json", help="tabular fields from Step_1")
    parser.add_argument("--taxonomy-out", default="data/label_taxonomy.json")
    parser.add_argument("--splits-out", default="data/splits.json")
    parser.add_argument("--out", default="data/shards", help="shard folder")
    return parser.parse_args()


def shard_meta(taxonomy: dict, cfg: ShardConfig, rows: list[dict], labels: list[int], splits: list[str],
               sizes: dict[str, list[int]], schema: dict, series: dict) -> dict:
    """The shard set's meta.json: classes, counts and shard files per split, the tabular schema, the series shape."""
    tabular = TabularSchema(schema)
    shard_counts = {s: len(n) for s, n in sizes.items()}
    counts = {s: Counter() for s in SPLITS}
    for label, split in zip(labels, splits):
        counts[split]["unlabelled" if label == UNLABELLED else taxonomy["classes"][label]] += 1
    return {
        "classes": taxonomy["classes"], "positive_index": taxonomy["positive_index"],
        "text_source": cfg.text_source, "shards": shard_counts, "shard_sizes": sizes,
        "files": {s: shard_pattern(s, n) for s, n in shard_counts.items()},
        "counts": {s: dict(sorted(c.items())) for s, c in counts.items()},
        "sizes": {s: sum(c.values()) for s, c in counts.items()},
        "sources": sorted({r["source"] for r in rows}),
        "tabular": {**schema, "n_numeric": tabular.n_numeric, "cardinalities": tabular.cardinalities},
        "series": {"steps": series["steps"], "channels": series["channels"],
                   "with_series": {s: sum(bool(r.get("series")) for r, sp in zip(rows, splits) if sp == s)
                                   for s in SPLITS}},
    }


def main() -> None:
    args = parse_args()
    cfg = section(ShardConfig, "shard", args.params)
    tax_cfg = section(TaxonomyConfig, "taxonomy", args.params)
    sources = section(PrepareConfig, "prepare", args.params).sources
    max_pixels = section(OcrConfig, "ocr", args.params).max_pixels
    for path in (args.manifest, args.ocr, args.schema):
        if not Path(path).is_file():
            raise PipelineError(f"{path} not found; run the earlier stages first (dvc repro ocr)")

    taxonomy = build_taxonomy(tax_cfg, [dataclasses.asdict(s) for s in sources])
    rows, labels = build_samples(read_jsonl(args.manifest), read_jsonl(args.ocr), taxonomy, cfg)
    near = near_duplicate_pairs([r["phash"] for r in rows], cfg.near_duplicate_distance)
    components = link_groups(rows, near)
    splits = assign_splits(rows, labels, cfg.fractions, cfg.seed, components)
    for warning in check_labelled(labels, splits, taxonomy["classes"]):
        print(f"warning: {warning}")
    largest = max(Counter(components).values())
    if largest > 0.05 * len(rows):
        print(f"warning: {largest} of {len(rows)} rows are linked into one group (identical/near-duplicate images or "
              "one group value) and share a split; lower shard.near_duplicate_distance if that is unexpected")
    fields = read_json(args.schema)
    series = {"steps": SeriesConfig().steps, "channels": list(SeriesConfig().channels), **fields.get("series", {})}
    if not fields["numeric"] and not fields["categorical"]:
        # no source has metadata: one always-missing field keeps the tabular expert buildable; fusion masks it out
        fields = {"numeric": ["no_tabular_fields"], "categorical": []}
    train_rows = [r for r, s in zip(rows, splits) if s == "train"]
    schema = fit_schema(fields["numeric"], fields["categorical"], train_rows)

    clean_stale_temps(Path(args.out).parent, Path(args.out).name)
    with atomic_dir(args.out) as tmp:
        sizes = write_shards(rows, labels, splits, tmp, cfg, max_pixels, (series["steps"], len(series["channels"])))
        meta = shard_meta(taxonomy, cfg, rows, labels, splits, sizes, schema, series)
        write_json(tmp / "meta.json", meta)
    write_json(args.taxonomy_out, taxonomy)
    write_json(args.splits_out, {"seed": cfg.seed, "fractions": cfg.fractions, "counts": meta["counts"],
                                 "near_duplicate_pairs": len(near), "largest_linked_group": largest,
                                 "ids": {s: sorted(r["id"] for r, sp in zip(rows, splits) if sp == s) for s in SPLITS}})
    print(f"shard: {meta['sizes']} samples in {meta['shards']} shards; classes {taxonomy['classes']}")


if __name__ == "__main__":
    run_cli(main)
