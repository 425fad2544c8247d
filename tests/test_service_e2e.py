"""The service over the tiny DAG's deployed model: a new meme scored over HTTP with OCR, calibration, the
operating point, the experts' own scores and the memory's neighbours; flagged or uncertain memes reach the review
queue; a folder import queues memes too; `python -m Step_7.serve` refuses to start without a model."""
import asyncio
import dataclasses
import io
import subprocess
import sys

import httpx
import numpy as np
import pytest

from Step_7.config import ServeConfig
from Step_7.serve import build

pytestmark = pytest.mark.e2e


def meme_png(top: str, bottom: str, seed: int) -> bytes:
    from Step_1.synthetic.render import draw_caption
    from Step_1.synthetic.scenes import make_background

    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    draw_caption(make_background("landscape", 320, rng), top, bottom, rng).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def cfg(tiny_dag, tmp_path) -> ServeConfig:
    root = tiny_dag.path
    return ServeConfig(models_dir=str(root / "models/mm_fusion"), comparison=str(root / "metrics/comparison.json"),
                       memory=str(root / "models/memory"), db_url=f"sqlite:///{tmp_path}/labels.db",
                       reviewers_file=str(tmp_path / "reviewers.json"), max_wait_ms=5)


async def call(app, fn):
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
            for _ in range(600):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            return await fn(client)


def test_a_new_meme_is_scored_with_ocr_calibration_and_neighbours(cfg):
    app = build(dataclasses.replace(cfg, enqueue=dataclasses.replace(cfg.enqueue, uncertain_margin=1.0)))
    image = meme_png("WHEN THE COFFEE", "FINALLY KICKS IN", 2024)

    async def check(client):
        ready = (await client.get("/readyz")).json()
        one = (await client.post("/v1/predict", files={"image": ("m.png", image)})).json()
        batch = (await client.post("/v1/predict/batch", files=[("images", ("a.png", image)),
                                                               ("images", ("b.txt", b"text"))])).json()
        return ready, one, batch

    ready, one, batch = asyncio.run(call(app, check))
    assert ready["calibrated"] and ready["operating_point"] == "max_f1" and ready["memory"]
    assert "COFFEE" in one["text"] and one["text_source"] == "ocr"
    assert abs(sum(one["calibrated"].values()) - 1) < 1e-4 and isinstance(one["flagged"], bool)
    assert set(one["experts"]) == set(ready["modalities"]) and len(one["memory"]["neighbours"]) == 3
    assert one["review"]["queued"]  # margin 1.0: every meme is queued
    assert batch["results"][0]["probabilities"] == one["probabilities"]  # the same meme, the same score in a batch
    assert batch["results"][1]["status"] == 415
    item = app.state.engine.store.item(one["review"]["item_id"])
    assert item["status"] == "unreviewed" and item["scored"]["experts"] == one["experts"]


def test_a_reviewed_meme_joins_the_memory_and_moves_the_next_score(cfg, tmp_path):
    loose = dataclasses.replace(cfg, enqueue=dataclasses.replace(cfg.enqueue, uncertain_margin=1.0))
    app = build(loose, memory_added=str(tmp_path / "added.safetensors"))
    image = meme_png("THOSE PEOPLE", "ARE A PLAGUE", 7)

    async def check(client):
        before = (await client.post("/v1/predict", files={"image": ("m.png", image)})).json()
        event = await asyncio.to_thread(app.state.reviews.review, before["review"]["item_id"], reviewer="ann",
                                        role="reviewer", action="hateful")
        after = (await client.post("/v1/predict", files={"image": ("m.png", image)})).json()
        return before, event, after

    before, event, after = asyncio.run(call(app, check))
    assert event["memory"] is True and (tmp_path / "added.safetensors").is_file()
    nearest = after["memory"]["neighbours"][0]
    assert nearest["id"] == f"review-{before['review']['item_id']}" and nearest["label"] == "abuse_hate"
    assert after["memory"]["probability"] > before["memory"]["probability"]
    assert after["probabilities"] == before["probabilities"]  # the head is unchanged: no retraining


def test_a_folder_import_queues_its_memes(cfg, tmp_path):
    from Step_7.enqueue import enqueue
    from Step_7.scorer import Scorer
    from Step_7.store import LabelStore

    folder = tmp_path / "incoming"
    folder.mkdir()
    for i, words in enumerate([("ALL OF THEM", "ARE VERMIN"), ("MONDAY AGAIN", "SO TIRED")]):
        (folder / f"{i}.png").write_bytes(meme_png(*words, seed=i))
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    scorer, store = Scorer(cfg), LabelStore(cfg.db_url)
    paths = sorted(folder.iterdir())
    counts = enqueue(paths, scorer, store, None)
    again = enqueue(paths, scorer, store, None)
    assert counts == {"queued": 2, "already_queued": 0, "not_selected": 0, "unreadable": 1}
    assert again["queued"] == 0 and again["already_queued"] == 2
    queued = store.queue(order="newest")
    assert len(queued) == 2 and {q["source"] for q in queued} == {"import"}


def test_serve_refuses_to_start_without_a_model(tmp_path, repo_root):
    done = subprocess.run([sys.executable, "-m", "Step_7.serve", "--model", str(tmp_path / "missing")],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "holds no fusion model" in done.stderr and "make run" in done.stderr
