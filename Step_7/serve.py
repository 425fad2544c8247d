"""`make serve`: the HTTP service with the review page, on serve.host:serve.port (docs/serving.md).

Flags override params.yaml's `serve` section, and env MODERATION_HOST, MODERATION_PORT, MODERATION_MODEL and
MODERATION_DB_URL override both. Reviewers log in with tokens made by `python -m Step_7.auth add NAME`.

    python -m Step_7.serve                                   # the deployed model (best_fusion), 127.0.0.1:8000
    python -m Step_7.serve --model models/mm_fusion/gated --port 8080
    curl -F image=@meme.jpg http://127.0.0.1:8000/v1/predict
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from core.cli import run_cli
from core.files import read_json
from core.params import PARAMS_FILE, section
from Step_5.memory_config import MemoryConfig
from Step_7.auth import Reviewers
from Step_7.config import ServeConfig
from Step_7.feedback import MemoryFeedback, ReviewsIntoMemory
from Step_7.review import review_router
from Step_7.scorer import resolve_model
from Step_7.service import create_app
from Step_7.store import LabelStore

ENV = {"host": "MODERATION_HOST", "port": "MODERATION_PORT", "model": "MODERATION_MODEL", "db_url": "MODERATION_DB_URL"}


def settings(args: argparse.Namespace) -> ServeConfig:
    """params.yaml's `serve`, then the flags, then the environment."""
    cfg = section(ServeConfig, "serve", args.params)
    changes = {key: getattr(args, key) for key in ENV if getattr(args, key) is not None}
    changes.update({key: os.environ[name] for key, name in ENV.items() if os.environ.get(name)})
    if "port" in changes:
        changes["port"] = int(changes["port"])
    return dataclasses.replace(cfg, **changes)


def build(cfg: ServeConfig, review: bool = True, memory_added: str | None = None):
    """The app over the deployed model; with `review`, the label store and the review page as well, and with
    `memory_added` (memory.added) and serve.memory_feedback, reviewed memes join the labelled memory at once."""
    folder = resolve_model(cfg)  # fails now, with what to do, rather than 503 for ever
    info = read_json(folder / "fusion.json")
    classes = info["classes"]
    positive = classes[info.get("positive_index", len(classes) - 1)]
    if not review:
        return create_app(cfg)
    store = LabelStore(cfg.db_url, positive=positive, negative=next(c for c in classes if c != positive))
    reviewers = Reviewers.load(cfg.reviewers_file)
    if not reviewers.entries:
        print(f"no reviewers in {cfg.reviewers_file}: add one with `python -m Step_7.auth add NAME --role reviewer` "
              "(the service runs; the review page refuses every login until then)", file=sys.stderr)
    feeding = ReviewsIntoMemory(store, None) if cfg.memory_feedback and memory_added else store
    router = review_router(feeding, reviewers, order=cfg.queue_order, session_hours=cfg.session_hours)
    app = create_app(cfg, store=store, extra_routers=(router,))
    if feeding is not store:
        feeding.feedback = MemoryFeedback(app.state.engine, memory_added)
    app.state.reviews = feeding
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_7.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=None, help="interface to listen on (default serve.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default serve.port, 8000)")
    parser.add_argument("--model", default=None, help="fusion model folder, or 'best' (default serve.model)")
    parser.add_argument("--db-url", dest="db_url", default=None, help="label store URL (default serve.db_url)")
    parser.add_argument("--no-review", action="store_true", help="scoring only: no label store, no review page")
    parser.add_argument("--params", default=PARAMS_FILE, help="params file (its serve section)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args()
    cfg = settings(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build(cfg, review=not args.no_review, memory_added=section(MemoryConfig, "memory", args.params).added)
    import uvicorn

    print(f"serving on http://{cfg.host}:{cfg.port}  (API: /v1/predict, /openapi.json; review page: /review)")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    run_cli(main)
