"""Export every reviewed meme from the label store as a `reviews` source (docs/own-data.md) for the next `dvc repro`.

Writes <out>/images/<id>.<ext> and <out>/reviews.jsonl (one row per item, sorted by id, keys sorted: id, image,
text, label, reviewers, resolved_at). The same reviews give byte-identical files and a file whose bytes would not
change is not touched, so an export with no new reviews changes nothing and `dvc repro` reruns nothing. Images of
items no longer reviewed are removed. Defaults come from the `serve` section (db_url, export_dir).

    python -m Step_7.export
    python -m Step_7.export --db sqlite:///data/reviews/labels.db --out data/raw/reviews
"""
from __future__ import annotations

import argparse
import mimetypes
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from core.cli import run_cli
from core.errors import PipelineError
from core.files import atomic_write_bytes, clean_stale_temps, dumps_json
from core.params import section
from Step_1.importers import REVIEWS_FILE
from Step_1.records import safe_name
from Step_7.config import ServeConfig
from Step_7.store import LabelStore

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
              "image/bmp": "bmp", "image/tiff": "tiff"}


def image_name(item_id: str, media_type: str) -> str:
    """'<id>.<ext>' for an item's image; characters unsafe in a file name become '_'."""
    ext = EXTENSIONS.get(media_type) or (mimetypes.guess_extension(media_type) or "").lstrip(".")
    if not ext:
        raise PipelineError(f"item {item_id}: media type {media_type!r} is not an image type; fix the item in the "
                            "label store or add the type to Step_7.export.EXTENSIONS")
    return f"{safe_name(item_id)}.{ext}"


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write atomically unless the file already holds these bytes; True when written."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    atomic_write_bytes(path, data)
    return True


def export(store, out: Path) -> dict:
    """Write the store's reviewed memes into `out`; returns {'items', 'written', 'unchanged', 'removed'} (files).

    Args:
        store: a Step_7.store.LabelStore, or any object with its `reviewed()` and `image(id)`.
        out: the export folder (a `reviews` source's path).
    """
    out = Path(out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out, REVIEWS_FILE)
    rows, names, written = [], {}, 0
    for item in sorted(store.reviewed(), key=lambda item: str(item["id"])):
        data, media_type = store.image(item["id"])
        name = image_name(item["id"], media_type)
        if name in names:
            raise PipelineError(f"items {names[name]} and {item['id']} would both be exported as images/{name}; "
                                "give them ids that differ in letters, digits, '_' or '-'")
        names[name] = item["id"]
        written += _write_if_changed(images / name, data)
        rows.append({"id": item["id"], "image": f"images/{name}", "text": item.get("text"), "label": item["label"],
                     "reviewers": list(item.get("reviewers") or []), "resolved_at": item.get("resolved_at")})
    index = "".join(dumps_json(row) + "\n" for row in rows).encode("utf-8")
    written += _write_if_changed(out / REVIEWS_FILE, index)
    stale = [p for p in images.iterdir() if p.is_file() and p.name not in names]
    for path in stale:  # after reviews.jsonl stopped naming them (and temp files a crashed export left)
        path.unlink()
    removed = sum(not p.name.startswith(".") for p in stale)
    return {"items": len(rows), "written": written, "unchanged": len(rows) + 1 - written, "removed": removed}


def open_store(url: str) -> LabelStore:
    """The label store at `url`; a SQLite file that does not exist is refused (an empty store would export nothing
    and remove every exported image)."""
    shown = url
    try:
        parsed = make_url(url)
        shown = parsed.render_as_string(hide_password=True)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
                and not Path(parsed.database).is_file():
            raise PipelineError(f"no label store at {parsed.database} (from {shown!r}); pass --db or set "
                                "serve.db_url to the database `make serve` writes reviews to")
        store = LabelStore(url)
        store.counts()
    except (SQLAlchemyError, ImportError, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PipelineError(f"cannot open the label store {shown!r}: {reason}; check --db or serve.db_url") from None
    return store


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_7.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (section 'serve')")
    parser.add_argument("--db", default=None, help="label store URL (default: serve.db_url)")
    parser.add_argument("--out", default=None, help="export folder (default: serve.export_dir)")
    args = parser.parse_args()
    cfg = section(ServeConfig, "serve", args.params)
    url, out = args.db or cfg.db_url, Path(args.out or cfg.export_dir)
    store = open_store(url)
    try:
        summary = export(store, out)
    finally:
        store.close()
    print(f"exported {summary['items']} reviewed memes to {out}: {summary['written']} files written, "
          f"{summary['unchanged']} unchanged, {summary['removed']} images removed")


if __name__ == "__main__":
    run_cli(main)
