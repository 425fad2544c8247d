"""Prometheus metrics of the service (one registry per app, so tests and several apps never share counters)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Telemetry:
    """Requests by route and status, request latency, batch sizes and durations, errors by kind, items queued."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("moderation_requests", "HTTP requests", ["route", "status"], registry=r)
        self.latency = Histogram("moderation_request_seconds", "request latency", ["route"], registry=r,
                                 buckets=LATENCY_BUCKETS)
        self.memes = Counter("moderation_memes_scored", "memes scored", registry=r)
        self.batch_size = Histogram("moderation_batch_size", "memes per model batch", registry=r, buckets=BATCH_BUCKETS)
        self.batch_seconds = Histogram("moderation_batch_seconds", "model time per batch", registry=r,
                                       buckets=LATENCY_BUCKETS)
        self.ocr_batch_size = Histogram("moderation_ocr_batch_size", "images per tesseract run", registry=r,
                                        buckets=BATCH_BUCKETS)
        self.errors = Counter("moderation_errors", "requests answered with an error", ["kind"], registry=r)
        self.queued = Counter("moderation_review_items_queued", "memes added to the review queue", registry=r)
        self.ready = Gauge("moderation_ready", "1 once the model is loaded", registry=r)

    def model_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        self.memes.inc(size)

    def ocr_batch(self, size: int, seconds: float) -> None:
        self.ocr_batch_size.observe(size)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
