"""Write a small Hateful-Memes-layout folder and a CSV export, with some broken files, for trying
the importers (`prepare.sources` kinds hateful_memes and csv) and for the smoke run.

  python -m tools.example_data data/raw/examples
creates data/raw/examples/hateful_memes/{img/,train.jsonl,dev_seen.jsonl,test_unseen.jsonl}
and data/raw/examples/export/{memes.csv,images/,series/}. Broken on purpose: an empty file, a truncated
PNG, a text file named .png, a truncated JPEG and a CSV row whose path leaves the dataset root. The CSV's
`engagement` column holds each post's hourly engagement in every accepted form: inline JSON (null for a missing
hour), a .csv file, a .npy file, or nothing.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from Step_1.synthetic.engagement import CHANNELS
from Step_1.synthetic.generate import make_engagement, make_meme
from Step_1.synthetic.options import SyntheticOptions


def _memes(count: int, seed: int):
    opts = SyntheticOptions(count=count, seed=seed)
    for i in range(count):
        record, jpeg = make_meme(i, opts)
        yield record, Image.open(io.BytesIO(jpeg)).convert("RGB")


def _engagement_cell(folder: Path, i: int, series: np.ndarray | None) -> str:
    """The CSV cell of post i's engagement: inline JSON, a .csv file, a .npy file (in turn), or empty."""
    if series is None:
        return ""
    if i % 3 == 0:
        return json.dumps([None if np.isnan(row).all() else [int(v) for v in row] for row in series])
    (folder / "series").mkdir(exist_ok=True)
    if i % 3 == 1:
        lines = [",".join(CHANNELS)] + ["" if np.isnan(row).all() else ",".join(str(int(v)) for v in row)
                                        for row in series]
        (folder / "series" / f"post_{i:03d}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return f"series/post_{i:03d}.csv"
    np.save(folder / "series" / f"post_{i:03d}.npy", series)
    return f"series/post_{i:03d}.npy"


def write_hateful_memes(folder: Path, count: int = 24) -> None:
    img = folder / "img"
    img.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (record, image) in enumerate(_memes(count, seed=101)):
        name = f"{10000 + i}.png"
        image.save(img / name)
        rows.append({"id": 10000 + i, "img": f"img/{name}", "label": int(record["label"] == "hateful"),
                     "text": record["text"].lower()})
    (img / f"{10000 + count}.png").write_bytes(b"")  # empty file
    png = (img / f"{10000}.png").read_bytes()
    (img / f"{10000 + count + 1}.png").write_bytes(png[: len(png) // 3])  # truncated
    (img / f"{10000 + count + 2}.png").write_text("this is not an image\n")  # text named .png
    broken = [{"id": 10000 + count + k, "img": f"img/{10000 + count + k}.png", "label": 0, "text": "broken"}
              for k in range(3)]
    third = count // 3
    files = {"train.jsonl": rows[:third] + broken, "dev_seen.jsonl": rows[third:2 * third],
             "test_unseen.jsonl": [{k: v for k, v in r.items() if k != "label"} for r in rows[2 * third:]]}
    for name, part in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")


def write_csv_export(folder: Path, count: int = 24) -> None:
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    with open(folder / "memes.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "caption", "is_abusive", "followers", "prior_reports", "platform", "user",
                         "engagement"])
        opts = SyntheticOptions(count=count, seed=202)
        for i, (record, image) in enumerate(_memes(count, seed=202)):
            name = f"post_{i:03d}.jpg"
            image.save(images / name, quality=90)
            tab = record["tabular"]
            series = make_engagement(record, i, opts, 72)
            writer.writerow([f"images/{name}", record["text"], "yes" if record["label"] == "hateful" else "no",
                             tab["followers"] if tab["followers"] is not None else "", tab["prior_reports"] or "",
                             tab["platform"] or "", f"user{i % 9}", _engagement_cell(folder, i, series)])
        jpeg = (images / "post_000.jpg").read_bytes()
        (images / "post_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
        writer.writerow(["images/post_truncated.jpg", "cut short", "no", "10", "0", "forum", "user1", ""])
        writer.writerow(["../../outside.jpg", "escapes the root", "no", "10", "0", "forum", "user2", ""])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.example_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default="data/raw/examples", help="output folder")
    parser.add_argument("--count", type=int, default=24, help="memes per example source")
    args = parser.parse_args()
    out = Path(args.out)
    write_hateful_memes(out / "hateful_memes", args.count)
    write_csv_export(out / "export", args.count)
    print(f"wrote {out}/hateful_memes and {out}/export")


if __name__ == "__main__":
    main()
