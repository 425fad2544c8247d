"""Score a folder of memes with the deployed model and put them in the review queue (source 'import').

    python -m Step_7.enqueue incoming/            # every image under the folder, scored and queued
    python -m Step_7.enqueue incoming/ --rule     # only those the service would queue (flagged or uncertain)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import run_cli
from core.errors import PipelineError
from core.params import PARAMS_FILE
from core.progress import progress
from Step_5.predict import expand_paths
from Step_7.config import EnqueueConfig
from Step_7.scorer import BadInput, Scorer
from Step_7.serve import settings
from Step_7.store import LabelStore


def enqueue(paths: list[Path], scorer: Scorer, store: LabelStore, rule: EnqueueConfig | None,
            batch: int = 16) -> dict:
    """Score `paths` in batches and add them to `store`; with `rule`, only what the service would queue."""
    counts = {"queued": 0, "already_queued": 0, "not_selected": 0, "unreadable": 0}
    for start in progress(range(0, len(paths), batch), desc="enqueue", unit="batch"):
        memes = []
        for path in paths[start:start + batch]:
            try:
                memes.append(scorer.check(path.read_bytes(), None, None, None))
            except (BadInput, OSError) as err:
                counts["unreadable"] += 1
                print(f"skipped {path}: {err}", file=sys.stderr)
        for meme, result in zip(memes, scorer.score(scorer.read_text(memes)) if memes else []):
            result["request_id"] = "import"
            if rule is not None and not scorer.wants_review(result, rule):
                counts["not_selected"] += 1
                continue
            scored = scorer.review_fields(meme, result)
            _, new = store.add_item(image=meme.data, media_type=meme.media_type, source="import", text=meme.text,
                                    scored=scored)
            counts["queued" if new else "already_queued"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_7.enqueue", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="image files or folders")
    parser.add_argument("--rule", action="store_true", help="queue only flagged or uncertain memes (serve.enqueue)")
    parser.add_argument("--model", default=None, help="fusion model folder, or 'best' (default serve.model)")
    parser.add_argument("--db-url", dest="db_url", default=None, help="label store URL (default serve.db_url)")
    parser.add_argument("--params", default=PARAMS_FILE, help="params file (its serve section)")
    args = parser.parse_args()
    args.host = args.port = None
    cfg = settings(args)
    paths = expand_paths(args.paths)
    if not paths:
        raise PipelineError(f"no image files found in {args.paths}")
    scorer = Scorer(cfg)
    store = LabelStore(cfg.db_url, positive=scorer.positive,
                       negative=next(c for c in scorer.predictor.classes if c != scorer.positive))
    counts = enqueue(paths, scorer, store, cfg.enqueue if args.rule else None)
    print(", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in counts.items()))


if __name__ == "__main__":
    run_cli(main)
