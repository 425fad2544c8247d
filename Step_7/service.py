"""The HTTP service: POST /v1/predict (one meme) and /v1/predict/batch, /healthz, /readyz, /metrics, and the
review page when a label store is attached. Memes are OCR'd and scored in micro-batches off the event loop."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from Step_7.batching import MicroBatcher
from Step_7.config import ServeConfig
from Step_7.scorer import BadInput, Meme, Scorer
from Step_7.telemetry import Telemetry

log = logging.getLogger("moderation.service")


class Engine:
    """The loaded model and its batchers; `ready` once the model is in memory."""

    def __init__(self, cfg: ServeConfig, load: Callable[[], Scorer], store, telemetry: Telemetry):
        self.cfg, self.load, self.store, self.telemetry = cfg, load, store, telemetry
        self.scorer: Scorer | None = None
        self.failure: str | None = None
        self.model_pool = ThreadPoolExecutor(1, thread_name_prefix="model")
        self.ocr_pool = ThreadPoolExecutor(cfg.ocr_workers, thread_name_prefix="ocr")
        self.io_pool = ThreadPoolExecutor(1, thread_name_prefix="store")
        wait = cfg.max_wait_ms / 1000
        self.model = MicroBatcher(lambda memes: self.scorer.score(memes), max_size=cfg.max_batch_size, max_wait=wait,
                                  executor=self.model_pool, on_batch=telemetry.model_batch)
        self.ocr = MicroBatcher(lambda memes: self.scorer.read_text(memes), max_size=cfg.max_batch_size,
                                max_wait=wait, executor=self.ocr_pool, concurrency=cfg.ocr_workers,
                                on_batch=telemetry.ocr_batch)

    async def start(self) -> None:
        self.model.start()
        self.ocr.start()
        asyncio.get_running_loop().run_in_executor(self.model_pool, self._load)

    def _load(self) -> None:
        try:
            self.scorer = self.load()
            self.telemetry.ready.set(1)
            log.info("model ready: %s", self.scorer.describe())
        except Exception as err:  # noqa: BLE001 - reported by /readyz and every predict call
            self.failure = f"{type(err).__name__}: {err}"
            log.exception("the model could not be loaded")

    async def stop(self) -> None:
        await self.model.stop()
        await self.ocr.stop()
        for pool in (self.model_pool, self.ocr_pool, self.io_pool):
            pool.shutdown(wait=False, cancel_futures=True)

    def need_scorer(self) -> Scorer:
        if self.scorer is None:
            raise BadInput(503, f"the model could not be loaded: {self.failure}" if self.failure else
                           "the model is still loading; retry when /readyz answers 200")
        return self.scorer

    async def check(self, data: bytes, text, tabular, series) -> Meme:
        scorer = self.need_scorer()
        return await asyncio.get_running_loop().run_in_executor(self.ocr_pool, scorer.check, data, text, tabular,
                                                                 series)

    async def score(self, meme: Meme, request_id: str) -> dict:
        try:
            if meme.text is None:
                await self.ocr.submit(meme)
            result = await self.model.submit(meme)
        except Exception:  # noqa: BLE001 - the client gets the request id, the log gets the traceback
            log.exception("%s: scoring failed", request_id)
            raise BadInput(500, "internal error while scoring this meme; the service log has the details under this "
                                "request id") from None
        result = {"request_id": request_id, "model": self.scorer.name, **result}
        if self.store is not None and self.scorer.wants_review(result, self.cfg.enqueue):
            try:
                item_id, _ = await asyncio.get_running_loop().run_in_executor(self.io_pool, self._enqueue, meme, result)
                result["review"] = {"item_id": item_id, "queued": True}
            except Exception:  # noqa: BLE001 - the score stands; the store's failure is logged and counted
                log.exception("%s: the label store refused the meme", request_id)
                self.telemetry.errors.labels("store").inc()
                result["review"] = {"item_id": None, "queued": False}
        return result

    def _enqueue(self, meme: Meme, result: dict) -> tuple[str, bool]:
        scored = self.scorer.review_fields(meme, result)
        found = self.store.add_item(image=meme.data, media_type=meme.media_type, source="traffic", text=meme.text,
                                    scored=scored)
        self.telemetry.queued.inc(int(found[1]))
        return found


def error(status: int, message: str, request_id: str) -> JSONResponse:
    return JSONResponse({"error": message, "request_id": request_id}, status_code=status,
                        headers={"X-Request-ID": request_id})


def install_handlers(app: FastAPI, telemetry: Telemetry, max_body_bytes: int) -> None:
    """4xx with a clear message for bad input, 5xx with the request id and no traceback for the rest."""
    def rid(request: Request) -> str:
        return getattr(request.state, "request_id", "-")

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, err: BadInput):
        telemetry.errors.labels("bad_input" if err.status < 500 else "unavailable" if err.status == 503
                                else "internal").inc()
        log.info("%s %s: %s %s", rid(request), request.url.path, err.status, err)
        return error(err.status, str(err), rid(request))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        telemetry.errors.labels("bad_input").inc()
        parts = ["/".join(str(p) for p in e.get("loc", ())) + f": {e.get('msg', 'invalid')}" for e in err.errors()]
        return error(422, "; ".join(parts) + " (see /openapi.json for the request fields)", rid(request))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        detail = err.detail
        if err.status_code == 413:
            detail = f"request body over the limit of {max_body_bytes} bytes (serve.max_body_bytes)"
        if err.status_code >= 400:
            telemetry.errors.labels("bad_input" if err.status_code < 500 else "http").inc()
        return JSONResponse({"error": detail, "request_id": rid(request)}, status_code=err.status_code,
                            headers={**(err.headers or {}), "X-Request-ID": rid(request)})

    @app.exception_handler(Exception)
    async def crash(request: Request, err: Exception):
        telemetry.errors.labels("internal").inc()
        log.exception("%s %s failed", rid(request), request.url.path)
        return error(500, "internal error while handling this request; the service log has the details under this "
                          "request id", rid(request))


def install_timing(app: FastAPI, telemetry: Telemetry, max_body_bytes: int) -> None:
    @app.middleware("http")
    async def request_id_and_timing(request: Request, call_next):
        request.state.request_id = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        started = time.perf_counter()
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > max_body_bytes:
            telemetry.errors.labels("bad_input").inc()
            response = error(413, f"request body of {declared} bytes is over the limit of {max_body_bytes} bytes "
                                  "(serve.max_body_bytes)", request.state.request_id)
        else:
            try:
                response = await call_next(request)
            except Exception:
                record(request, started, 500)  # the crash handler answers it; count it here
                raise
        record(request, started, response.status_code)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    def record(request: Request, started: float, status: int) -> None:
        path = getattr(request.scope.get("route"), "path", "unmatched")
        telemetry.latency.labels(path).observe(time.perf_counter() - started)
        telemetry.requests.labels(path, str(status)).inc()


def create_app(cfg: ServeConfig, *, load: Callable[[], Scorer] | None = None, store=None,
               extra_routers: tuple = ()) -> FastAPI:
    """The service app. `load` builds the scorer (default: the deployed model of `cfg`), run in the background so
    /healthz answers at once and /readyz says 503 until it is done; `store` (a Step_7.store.LabelStore) receives
    flagged and uncertain memes for review; `extra_routers` (the review page) are included as they are."""
    telemetry = Telemetry()
    engine = Engine(cfg, load or (lambda: Scorer(cfg)), store, telemetry)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await engine.start()
        yield
        await engine.stop()

    app = FastAPI(title="Meme moderation service", version="1", lifespan=lifespan,
                  description="Scores memes (image, optional text, tabular fields and engagement series) with the "
                              "deployed fusion model; see docs/serving.md.")
    app.state.engine, app.state.telemetry = engine, telemetry
    install_handlers(app, telemetry, cfg.max_body_bytes)
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=cfg.max_body_bytes)  # a streamed body
    install_timing(app, telemetry, cfg.max_body_bytes)  # outermost: request ids, timing, a declared length
    install_routes(app, engine, telemetry, cfg)
    for router in extra_routers:
        app.include_router(router)
    return app


def install_routes(app: FastAPI, engine: Engine, telemetry: Telemetry, cfg: ServeConfig) -> None:
    @app.get("/healthz", summary="the process is up")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="200 once the model is loaded, 503 before")
    async def readyz():
        if engine.scorer is None:
            state = "failed" if engine.failure else "loading"
            return JSONResponse({"status": state, "error": engine.failure}, status_code=503)
        return {"status": "ready", **engine.scorer.describe()}

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics():
        return Response(telemetry.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/predict", summary="score one meme")
    async def predict(request: Request, image: Annotated[UploadFile, File(description="the meme image")],
                      text: Annotated[str | None, Form(description="its text; OCR reads it when absent")] = None,
                      tabular: Annotated[str | None, Form(description='tabular fields as JSON, e.g. '
                                                                       '{"prior_reports": 2}')] = None,
                      series: Annotated[str | None, Form(description="engagement series: JSON list of hours")] = None):
        meme = await engine.check(await image.read(), text, tabular, series)
        return await engine.score(meme, request.state.request_id)

    @app.post("/v1/predict/batch", summary="score several memes; a bad one gets an error entry, the rest are scored")
    async def predict_batch(request: Request, images: Annotated[list[UploadFile], File(description="meme images")],
                            texts: Annotated[str | None, Form(description="JSON list of texts (null: OCR), one per "
                                                                          "image")] = None,
                            tabular: Annotated[str | None, Form(description="tabular fields as JSON, for every "
                                                                            "image")] = None):
        engine.need_scorer()
        if len(images) > cfg.max_batch_items:
            raise BadInput(413, f"{len(images)} images in one request; the limit is {cfg.max_batch_items} "
                                "(serve.max_batch_items)")
        given = parse_texts(texts, len(images))
        rid = request.state.request_id

        async def one(i: int, upload: UploadFile) -> dict:
            try:
                meme = await engine.check(await upload.read(), given[i], tabular, None)
                return await engine.score(meme, f"{rid}-{i}")
            except BadInput as err:
                telemetry.errors.labels("bad_input").inc()
                return {"index": i, "filename": upload.filename, "error": str(err), "status": err.status}

        return {"request_id": rid, "results": await asyncio.gather(*(one(i, u) for i, u in enumerate(images)))}


def parse_texts(value: str | None, count: int) -> list[str | None]:
    if value in (None, ""):
        return [None] * count
    try:
        texts = json.loads(value)
    except json.JSONDecodeError as err:
        raise BadInput(422, f"texts: not valid JSON ({err.msg}); send a list with one string or null per image") from None
    if not isinstance(texts, list) or len(texts) != count or not all(t is None or isinstance(t, str) for t in texts):
        raise BadInput(422, f"texts: must be a JSON list of {count} strings or nulls, one per image")
    return texts
