"""The HTTP service with a stand-in model: readiness, micro-batching, every kind of bad input answered 4xx while
good requests keep being served, model errors as 5xx with the request id, Prometheus metrics, the review queue."""
import asyncio
import io
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from core.errors import PipelineError
from Step_7.config import ServeConfig
from Step_7.scorer import Scorer
from Step_7.service import create_app


class StandIn:
    """What Scorer needs of a Predictor: tabular checks and series parsing."""
    ocr, threshold, operating_point, temperature, memory = None, 0.5, "max_f1", 1.0, None
    classes, modalities = ["benign", "abuse_hate"], ["text", "vision"]

    def check_tabular(self, row):
        if set(row) - {"prior_reports"}:
            raise PipelineError(f"tabular field '{sorted(set(row) - {'prior_reports'})[0]}' is unknown to this model")

    def read_series(self, value):
        return np.zeros((72, 5))


class FakeScorer(Scorer):
    """The real input checks; a model whose probability is the image's mean brightness, and no tesseract."""

    def __init__(self, cfg: ServeConfig, fail_on: str | None = None, delay: float = 0.01):
        self.predictor, self.max_pixels, self.name = StandIn(), cfg.max_pixels, "fusion_fake"
        self.positive, self.threshold, self.folder = "abuse_hate", 0.5, "models/mm_fusion/fake"
        self.fail_on, self.delay, self.batches = fail_on, delay, []

    def read_text(self, memes):
        for meme in memes:
            meme.text, meme.text_source = "OCR TEXT", "ocr"
        return memes

    def score(self, memes):
        self.batches.append(len(memes))
        time.sleep(self.delay)
        if any(m.text == self.fail_on for m in memes):
            raise RuntimeError("secret internal detail")
        out = []
        for m in memes:
            p = float(np.asarray(m.image).mean() / 255)
            out.append({"probabilities": {"benign": 1 - p, "abuse_hate": p}, "calibrated": {"benign": 1 - p, "abuse_hate": p},
                        "label": "abuse_hate" if p >= 0.5 else "benign", "flagged": p >= 0.5,
                        "experts": {"text": p, "vision": 1 - p}, "text": m.text, "text_source": m.text_source})
        return out


def png(shade: int = 128, size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (shade,) * 3).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeStore:
    def __init__(self):
        self.items = []

    def add_item(self, *, image, media_type, source, text, scored, created=None):
        self.items.append({"media_type": media_type, "source": source, "text": text, "scored": scored})
        return f"item{len(self.items)}", True


async def serve(app, fn):
    """Run `fn(client)` against the app with its lifespan (the batchers and the model load) running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            for _ in range(200):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            return await fn(client)


def make(cfg=None, **kw):
    cfg = cfg or ServeConfig(max_batch_size=8, max_wait_ms=20, max_body_bytes=200_000, max_pixels=1_000_000)
    scorer = FakeScorer(cfg, **kw)
    return create_app(cfg, load=lambda: scorer), scorer


def test_ready_only_after_the_model_loaded():
    gate = threading.Event()
    cfg = ServeConfig()
    app = create_app(cfg, load=lambda: gate.wait(5) and FakeScorer(cfg))

    async def check(client):
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
        refused = await client.post("/v1/predict", files={"image": ("a.png", png())})
        assert refused.status_code == 503 and "still loading" in refused.json()["error"]
        gate.set()
        for _ in range(100):
            if (await client.get("/readyz")).status_code == 200:
                return (await client.get("/readyz")).json()
            await asyncio.sleep(0.01)

    async def run():
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
                return await check(client)

    ready = asyncio.run(run())
    assert ready["status"] == "ready" and ready["model"] == "fusion_fake"


def test_a_failed_load_is_reported_not_hidden():
    def broken():
        raise PipelineError("models/mm_fusion/late holds no fusion model")

    app = create_app(ServeConfig(), load=broken)

    async def check(client):
        ready = await client.get("/readyz")
        answer = await client.post("/v1/predict", files={"image": ("a.png", png())})
        return ready, answer

    ready, answer = asyncio.run(serve(app, check))
    assert ready.status_code == 503 and "holds no fusion model" in ready.json()["error"]
    assert answer.status_code == 503 and "could not be loaded" in answer.json()["error"]


def test_predict_answers_the_predict_fields_with_a_request_id():
    app, _ = make()

    async def check(client):
        given = await client.post("/v1/predict", files={"image": ("a.png", png(200))}, data={"text": "HELLO"},
                                  headers={"X-Request-ID": "abc123"})
        read = await client.post("/v1/predict", files={"image": ("b.png", png(20))})
        return given, read

    given, read = asyncio.run(serve(app, check))
    assert given.status_code == 200 and given.headers["x-request-id"] == "abc123"
    body = given.json()
    assert body["request_id"] == "abc123" and body["model"] == "fusion_fake"
    assert body["text"] == "HELLO" and body["text_source"] == "given" and body["flagged"] is True
    assert read.json()["text_source"] == "ocr" and read.json()["label"] == "benign"
    assert len(read.json()["request_id"]) == 32


def test_concurrent_requests_share_batches_up_to_the_limit():
    app, scorer = make()

    async def check(client):
        return await asyncio.gather(*(client.post("/v1/predict", files={"image": (f"{i}.png", png(i * 10))},
                                                  data={"text": f"m{i}"}) for i in range(20)))

    answers = asyncio.run(serve(app, check))
    assert [a.status_code for a in answers] == [200] * 20
    assert [a.json()["text"] for a in answers] == [f"m{i}" for i in range(20)]  # each answer is its own meme's
    assert sum(scorer.batches) == 20 and max(scorer.batches) <= 8 and len(scorer.batches) < 20


def test_batch_endpoint_scores_the_good_images_and_names_the_bad_one():
    app, _ = make()

    async def check(client):
        files = [("images", ("a.png", png(10))), ("images", ("b.txt", b"not an image")), ("images", ("c.png", png(250)))]
        return await client.post("/v1/predict/batch", files=files, data={"texts": '["A", null, "C"]'})

    answer = asyncio.run(serve(app, check))
    results = answer.json()["results"]
    assert answer.status_code == 200 and results[0]["text"] == "A" and results[2]["flagged"] is True
    assert results[1]["status"] == 415 and results[1]["filename"] == "b.txt" and "not an image" in results[1]["error"]


def truncated_png() -> bytes:
    return png(size=64)[:60]


def bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (2000, 2000)).save(buffer, format="PNG")  # 4 megapixels in a few kB
    return buffer.getvalue()


BAD = [  # (files, form, status, words in the message)
    ({"image": ("x.txt", b"hello")}, {}, 415, "not an image"),
    ({"image": ("x.png", truncated_png())}, {}, 415, "truncated"),
    ({"image": ("x.png", b"")}, {}, 415, "empty"),
    ({"image": ("bomb.png", bomb_png())}, {}, 413, "pixel limit"),
    ({"image": ("big.png", b"\0" * 300_000)}, {}, 413, "over the limit"),
    ({"image": ("x.png", png())}, {"tabular": "{not json"}, 422, "not valid JSON"),
    ({"image": ("x.png", png())}, {"tabular": "[1, 2]"}, 422, "JSON object"),
    ({"image": ("x.png", png())}, {"tabular": '{"prior_report": 1}'}, 422, "'prior_report' is unknown"),
    ({"image": ("x.png", png())}, {"series": "/etc/passwd"}, 422, "file paths are not read"),
    ({}, {"text": "no image"}, 422, "image"),
]


@pytest.mark.parametrize("files, form, status, words", BAD, ids=[b[3] for b in BAD])
def test_bad_input_is_a_clear_4xx_while_load_keeps_being_served(files, form, status, words):
    app, _ = make()

    async def check(client):
        good = [client.post("/v1/predict", files={"image": ("g.png", png(i))}, data={"text": "ok"}) for i in range(6)]
        answers = await asyncio.gather(*good[:3], client.post("/v1/predict", files=files or None, data=form), *good[3:])
        after = await client.post("/v1/predict", files={"image": ("g.png", png())}, data={"text": "after"})
        return answers, after

    answers, after = asyncio.run(serve(app, check))
    bad = answers[3]
    assert bad.status_code == status and words in bad.json()["error"], bad.text
    assert "Traceback" not in bad.text
    assert [a.status_code for a in answers[:3] + answers[4:]] == [200] * 6 and after.status_code == 200


def test_a_wrong_content_type_and_a_streamed_oversized_body_are_refused():
    app, _ = make()

    async def check(client):
        as_json = await client.post("/v1/predict", json={"image": "aGVsbG8="})

        async def chunks():
            yield b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
            for _ in range(40):
                yield b"x" * 10_000

        streamed = await client.post("/v1/predict", content=chunks(),
                                     headers={"content-type": "multipart/form-data; boundary=zz"})
        return as_json, streamed

    as_json, streamed = asyncio.run(serve(app, check))
    assert as_json.status_code == 422 and "image" in as_json.json()["error"]
    assert streamed.status_code == 413


def test_a_model_error_is_a_500_with_the_request_id_and_no_internals():
    app, _ = make(fail_on="boom")

    async def check(client):
        failed = await client.post("/v1/predict", files={"image": ("a.png", png())}, data={"text": "boom"})
        fine = await client.post("/v1/predict", files={"image": ("a.png", png())}, data={"text": "fine"})
        return failed, fine

    failed, fine = asyncio.run(serve(app, check))
    assert failed.status_code == 500 and failed.json()["request_id"] == failed.headers["x-request-id"]
    assert "secret internal detail" not in failed.text and "Traceback" not in failed.text
    assert fine.status_code == 200


def test_metrics_count_requests_batches_and_errors():
    app, _ = make()

    async def check(client):
        await client.post("/v1/predict", files={"image": ("a.png", png())}, data={"text": "a"})
        await client.post("/v1/predict", files={"image": ("a.txt", b"nope")})
        return (await client.get("/metrics")).text

    text = asyncio.run(serve(app, check))
    assert 'moderation_requests_total{route="/v1/predict",status="200"} 1.0' in text
    assert 'moderation_requests_total{route="/v1/predict",status="415"} 1.0' in text
    assert "moderation_batch_size_count 1.0" in text and 'moderation_errors_total{kind="bad_input"} 1.0' in text
    assert "moderation_ready 1.0" in text and "moderation_request_seconds_bucket" in text


def test_flagged_and_uncertain_memes_join_the_review_queue():
    cfg = ServeConfig(max_wait_ms=1)
    store, scorer = FakeStore(), FakeScorer(ServeConfig())
    app = create_app(cfg, load=lambda: scorer, store=store)

    async def check(client):
        return [await client.post("/v1/predict", files={"image": ("a.png", png(shade))}, data={"text": str(shade)})
                for shade in (10, 120, 140, 250)]  # p = 0.04 (clear), 0.47 (uncertain), 0.55 and 0.98 (flagged)

    answers = asyncio.run(serve(app, check))
    assert ["review" in a.json() for a in answers] == [False, True, True, True]
    assert [i["text"] for i in store.items] == ["120", "140", "250"]
    item = store.items[0]
    assert item["source"] == "traffic" and item["media_type"] == "image/png"
    assert item["scored"]["experts"] == {"text": pytest.approx(120 / 255), "vision": pytest.approx(135 / 255)}


def test_a_store_failure_keeps_the_score_and_is_counted():
    class BrokenStore:
        def add_item(self, **_):
            raise RuntimeError("database is locked")

    scorer = FakeScorer(ServeConfig())
    app = create_app(ServeConfig(max_wait_ms=1), load=lambda: scorer, store=BrokenStore())

    async def check(client):
        answer = await client.post("/v1/predict", files={"image": ("a.png", png(250))}, data={"text": "x"})
        return answer, (await client.get("/metrics")).text

    answer, metrics = asyncio.run(serve(app, check))
    assert answer.status_code == 200 and answer.json()["flagged"] is True
    assert answer.json()["review"] == {"item_id": None, "queued": False}
    assert 'moderation_errors_total{kind="store"} 1.0' in metrics
