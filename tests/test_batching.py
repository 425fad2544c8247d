"""The micro-batcher: batches close on size or on time, results go back to their own callers, a failed batch
fails only its own requests."""
import asyncio
import time

from Step_7.batching import MicroBatcher


def test_the_batcher_closes_a_batch_on_size_or_on_time_and_survives_a_failure():
    from concurrent.futures import ThreadPoolExecutor

    sizes = []

    def fn(items):
        sizes.append(len(items))
        if "bad" in items:
            raise ValueError("bad batch")
        return [i * 2 for i in items]

    async def run():
        batcher = MicroBatcher(fn, max_size=4, max_wait=0.05, executor=ThreadPoolExecutor(1))
        batcher.start()
        doubled = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
        started = time.perf_counter()
        alone = await batcher.submit(7)
        waited = time.perf_counter() - started
        failed = await asyncio.gather(batcher.submit("bad"), batcher.submit(1), return_exceptions=True)
        after = await batcher.submit(3)
        await batcher.stop()
        return doubled, alone, waited, failed, after

    doubled, alone, waited, failed, after = asyncio.run(run())
    assert doubled == [i * 2 for i in range(10)] and sizes[:3] == [4, 4, 2]
    assert alone == 14 and 0.04 <= waited < 1.0
    assert all(isinstance(f, ValueError) for f in failed) and after == 6
