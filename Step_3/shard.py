"""Stage `shard`: taxonomy, splits and byte-reproducible WebDataset shards.

Reads the manifest and OCR results from Step 2. Writes data/label_taxonomy.json,
data/splits.json and data/shards/ with {train,val,test}/<split>-NNNNNN.tar plus meta.json
(counts, classes, tabular schema with train-only statistics) for later stages.
Each sample: __key__ = id, the image (original JPEG/PNG bytes, or a normalised PNG when the
source needed conversion), txt (OCR or gold text, see shard.text_source) and json (id,
label, tabular fields, source, OCR confidence, gold text).
"""
from __future__ import annotations

import argparse
import io
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import webdataset as wds
from tqdm import tqdm

from core.errors import PipelineError, run_cli
from core.files import atomic_dir, clean_stale_temps, dumps_json, read_json, read_jsonl, write_json
from core.params import check, load_params, section
from Step_2.images import read_image
from Step_2.phash import near_duplicate_pairs
from Step_3.splits import SPLITS, assign_splits, check_labelled, link_groups
from Step_3.tabular import TabularEncoder, fit_schema
from Step_3.taxonomy import UNLABELLED, TaxonomyConfig, build_taxonomy, map_label


@dataclass
class ShardConfig:
    seed: int = 7
    fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "val": 0.12, "test": 0.18})
    text_source: Literal["ocr", "gold"] = "ocr"
    maxcount: int = 500
    near_duplicate_distance: int = 4  # pHash bits; images this close share a split (-1: exact bytes only)

    def __post_init__(self) -> None:
        check(set(self.fractions) == set(SPLITS), f"fractions need exactly the keys {list(SPLITS)}")
        check(all(v >= 0 for v in self.fractions.values()), "fractions must be non-negative")
        check(math.isclose(sum(self.fractions.values()), 1.0, abs_tol=1e-6),
              f"fractions must sum to 1, got {sum(self.fractions.values()):.4f}")
        check(self.maxcount >= 1, f"maxcount must be >= 1, got {self.maxcount}")
        check(-1 <= self.near_duplicate_distance <= 32, "near_duplicate_distance must be in [-1, 32]")


IMAGE_EXT = {"JPEG": "jpg", "PNG": "png"}


def image_payload(row: dict, max_pixels: int) -> tuple[str, bytes]:
    """(extension, bytes) stored in the shard: original bytes when plain, else normalised PNG."""
    data, rgb, info = read_image(row["image"], max_pixels)
    if not info.needs_conversion:
        return IMAGE_EXT[info.format], data
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return "png", buffer.getvalue()


def build_samples(manifest: list[dict], ocr: list[dict], taxonomy: dict, cfg: ShardConfig) -> tuple[list[dict], list[int]]:
    """Join manifest and OCR rows; returns the joined rows and their unified label ids."""
    by_id = {row["id"]: row for row in ocr}
    rows, labels = [], []
    for row in manifest:
        hit = by_id.get(row["id"])
        if hit is None:
            raise PipelineError(f"id '{row['id']}' is in the manifest but not in the OCR results; rerun the ocr stage")
        text = row["gold_text"] if cfg.text_source == "gold" and row["gold_text"] else hit["text"]
        rows.append({**row, "text": text or "", "ocr_text": hit["text"], "ocr_confidence": hit["confidence"]})
        labels.append(map_label(taxonomy, row["source"], row["label"], where=f"manifest row '{row['id']}'"))
    return rows, labels


def write_shards(rows: list[dict], labels: list[int], splits: list[str], out: Path, cfg: ShardConfig,
                 max_pixels: int) -> dict[str, int]:
    """Write every split's shards into `out` (an empty folder); returns shard counts per split."""
    order = sorted(range(len(rows)), key=lambda i: rows[i]["id"])
    random.Random(cfg.seed).shuffle(order)  # mixed shards, same order every run
    shard_counts = {}
    for split in SPLITS:
        (out / split).mkdir(parents=True)
        members = [i for i in order if splits[i] == split]
        pattern = str(out / split / f"{split}-%06d.tar")
        with wds.ShardWriter(pattern, maxcount=cfg.maxcount, verbose=0, mtime=0) as sink:
            for i in tqdm(members, desc=f"shard {split}", unit="sample"):
                row = rows[i]
                ext, payload = image_payload(row, max_pixels)
                record = {"id": row["id"], "label": labels[i], "source": row["source"], "tabular": row["tabular"],
                          "ocr_confidence": row["ocr_confidence"], "gold_text": row["gold_text"], "split": split}
                sink.write({"__key__": row["id"], ext: payload, "txt": row["text"].encode("utf-8"),
                            "json": dumps_json(record).encode("utf-8")})
            shard_counts[split] = sink.shard if members else 0
        if not members:
            for empty in (out / split).glob("*.tar"):
                empty.unlink()
    return shard_counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_3.shard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (sections shard, taxonomy, prepare.sources)")
    parser.add_argument("--manifest", default="data/manifest.jsonl")
    parser.add_argument("--ocr", default="data/ocr.jsonl")
    parser.add_argument("--schema", default="data/prepared/schema.json", help="tabular fields from Step_1")
    parser.add_argument("--taxonomy-out", default="data/label_taxonomy.json")
    parser.add_argument("--splits-out", default="data/splits.json")
    parser.add_argument("--out", default="data/shards", help="shard folder")
    args = parser.parse_args()
    cfg = section(ShardConfig, "shard", args.params)
    tax_cfg = section(TaxonomyConfig, "taxonomy", args.params)
    params = load_params(args.params)
    max_pixels = params.get("ocr", {}).get("max_pixels", 40_000_000)
    for path in (args.manifest, args.ocr, args.schema):
        if not Path(path).is_file():
            raise PipelineError(f"{path} not found; run the earlier stages first (dvc repro ocr)")

    taxonomy = build_taxonomy(tax_cfg, params["prepare"]["sources"])
    rows, labels = build_samples(read_jsonl(args.manifest), read_jsonl(args.ocr), taxonomy, cfg)
    near = near_duplicate_pairs([r["phash"] for r in rows], cfg.near_duplicate_distance)
    components = link_groups(rows, near)
    splits = assign_splits(rows, labels, cfg.fractions, cfg.seed, components)
    check_labelled(labels, splits, taxonomy["classes"])
    largest = max(Counter(components).values())
    if largest > 0.05 * len(rows):
        print(f"warning: {largest} of {len(rows)} rows are linked into one group (identical/near-duplicate images or "
              "one group value) and share a split; lower shard.near_duplicate_distance if that is unexpected")
    fields = read_json(args.schema)
    if not fields["numeric"] and not fields["categorical"]:
        # no source has metadata: one always-missing field keeps the tabular expert buildable; fusion masks it out
        fields = {"numeric": ["no_tabular_fields"], "categorical": []}
    train_rows = [r for r, s in zip(rows, splits) if s == "train"]
    schema = fit_schema(fields["numeric"], fields["categorical"], train_rows)
    encoder = TabularEncoder(schema)

    clean_stale_temps(Path(args.out).parent, Path(args.out).name)
    with atomic_dir(args.out) as tmp:
        shard_counts = write_shards(rows, labels, splits, tmp, cfg, max_pixels)
        counts = {s: Counter() for s in SPLITS}
        for label, split in zip(labels, splits):
            counts[split]["unlabelled" if label == UNLABELLED else taxonomy["classes"][label]] += 1
        meta = {
            "classes": taxonomy["classes"], "positive_index": taxonomy["positive_index"],
            "text_source": cfg.text_source, "shards": shard_counts,
            "counts": {s: dict(sorted(c.items())) for s, c in counts.items()},
            "sizes": {s: sum(c.values()) for s, c in counts.items()},
            "sources": sorted({r["source"] for r in rows}),
            "tabular": {**schema, "n_numeric": encoder.n_numeric, "cardinalities": encoder.cardinalities},
        }
        write_json(tmp / "meta.json", meta)
    write_json(args.taxonomy_out, taxonomy)
    write_json(args.splits_out, {"seed": cfg.seed, "fractions": cfg.fractions, "counts": meta["counts"],
                                 "near_duplicate_pairs": len(near), "largest_linked_group": largest,
                                 "ids": {s: sorted(r["id"] for r, sp in zip(rows, splits) if sp == s) for s in SPLITS}})
    print(f"shard: {meta['sizes']} samples in {shard_counts} shards; classes {taxonomy['classes']}")


if __name__ == "__main__":
    run_cli(main)
