"""Micro-batching for an asyncio service: requests wait up to `max_wait` for company, then run as one batch."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any


class MicroBatcher:
    """Collects submitted items into batches of at most `max_size`, closing a batch `max_wait` seconds after its
    first item; `fn(items) -> results` (one result per item, in order) runs in `executor`, at most `concurrency`
    batches at a time, so the event loop never waits on it. An exception from `fn` fails every item of its batch.

    `on_batch(size, seconds)` is called after each batch (metrics)."""

    def __init__(self, fn: Callable[[list], list], *, max_size: int, max_wait: float, executor: Executor,
                 concurrency: int = 1, on_batch: Callable[[int, float], None] | None = None):
        if max_size < 1 or max_wait < 0 or concurrency < 1:
            raise ValueError(f"{max_size=} must be >= 1, {max_wait=} >= 0, {concurrency=} >= 1")
        self.fn, self.max_size, self.max_wait, self.executor = fn, max_size, max_wait, executor
        self.on_batch = on_batch
        self.queue: asyncio.Queue[tuple[Any, asyncio.Future]] | None = None
        self.workers: list[asyncio.Task] = []
        self.concurrency = concurrency

    def start(self) -> None:
        """Start the collecting tasks on the running loop."""
        self.queue = asyncio.Queue()
        self.workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        for task in self.workers:
            task.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        self.workers = []

    @property
    def waiting(self) -> int:
        return 0 if self.queue is None else self.queue.qsize()

    async def submit(self, item: Any) -> Any:
        """The result of `fn` for this item, once its batch has run."""
        if self.queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((item, future))
        return await future

    async def _collect(self) -> list[tuple[Any, asyncio.Future]]:
        batch = [await self.queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_size:
            left = deadline - time.monotonic()
            if left <= 0:
                while len(batch) < self.max_size and not self.queue.empty():  # whatever is already here comes along
                    batch.append(self.queue.get_nowait())
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), timeout=left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [(item, future) for item, future in batch if not future.cancelled()]
            if not live:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self.executor, self.fn, [item for item, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(live)} items")
            except Exception as err:  # noqa: BLE001 - handed to every waiting request
                for _, future in live:
                    if not future.done():
                        future.set_exception(err)
                continue
            finally:
                if self.on_batch:
                    self.on_batch(len(live), time.perf_counter() - started)
            for (_, future), result in zip(live, results):
                if not future.done():
                    future.set_result(result)
