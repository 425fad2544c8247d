"""Torch DataLoaders over shard streams: one split per epoch (SplitLoader) or several splits in one pooled pass
(PooledLoader), in forked workers that divide the shards among them, or the samples within the shards.

Which tar members a loader reads and how it decodes a sample come in its LoaderOptions
(Step_3.reader.ShardReader fills them in); this module streams, shuffles, sorts and batches.
"""
from __future__ import annotations

import itertools
import json
import math
import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import webdataset as wds

from core import distributed
from core.errors import PipelineError
from Step_3.tar_stream import split_name, tar_samples


@dataclass(frozen=True)
class LoaderOptions:
    """What a loader reads of each sample and how it batches the samples.

    members: which tar members of a sample to read (None: all); decode: raw members -> the sample `transform`
    takes (None: the raw members themselves); select: keeps only the raw samples it accepts (before decoding;
    len() still counts every sample); order_by (unshuffled loaders): sorts each run of `order_buffer`
    transformed samples by their keys (a list of samples -> a key each, e.g. token counts), so batches pad
    little; pin_memory: for batches that go to a CUDA device."""

    transform: Callable[[dict], Any]
    collate: Callable
    batch_size: int
    num_workers: int = 0
    pin_memory: bool = False
    members: Callable[[str], bool] | None = None
    decode: Callable[[dict], dict] | None = None
    select: Callable[[dict], bool] | None = None
    order_by: Callable[[list], list[float]] | None = None
    order_buffer: int = 4096


class SplitLoader:
    """One split as a persistent torch DataLoader: iterate it once per epoch; len() is the exact batch count.

    Each worker owns the shards w, w+W, ... for the whole run (workers are forked once), shuffles their
    order and then the samples in a buffer, seeded by (seed, epoch); with shuffle=False the order is the
    shard order. With more workers than shards, every worker reads every shard and keeps its share of the
    samples (`samples_of_this_worker`), so the worker count does not depend on the shard count. Partial batches
    are kept. A training loader (shuffle) in a run on several processes streams per rank instead (`per_rank`;
    see `per_rank_pipeline`).
    """

    def __init__(self, urls: list[str], sizes: list[int], options: LoaderOptions, *, shuffle: bool, seed: int,
                 shuffle_buffer: int = 1000):
        if not urls:
            raise PipelineError("no shards to read")
        # training on several processes: each rank streams its own shards (resampled, so every rank gets a
        # full epoch whatever the shard count) in batches of its share of the global batch
        self.per_rank = shuffle and distributed.active()
        self.workers = options.num_workers
        if self.per_rank:
            pipeline, self.steps = per_rank_pipeline(urls, sizes, options, seed, shuffle_buffer)
        else:
            pipeline = split_pipeline(urls, options, shuffle, seed, shuffle_buffer)
            self.steps = steps_per_epoch(sizes, options.batch_size, self.workers)
        self.loader = worker_loader(pipeline, self.workers, options.pin_memory, persistent=True)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return self.steps


def split_pipeline(urls: list[str], options: LoaderOptions, shuffle: bool, seed: int, shuffle_buffer: int):
    """The pipeline of a SplitLoader in a one-process run (or an unshuffled one): workers beyond the shard count
    split the samples within shards, so a GPU is fed whatever the shard count."""
    within_shards = options.num_workers > len(urls)
    stages = [wds.SimpleShardList(urls)] + ([] if within_shards else [wds.split_by_worker])
    if shuffle:  # detshuffle counts its epochs itself: each pass (in each worker) reshuffles reproducibly
        stages.append(wds.detshuffle(bufsize=len(urls), initial=len(urls), seed=seed * 1_000_003))
    wanted = options.members
    stages.append(samples_of_this_worker(wanted) if within_shards else tar_samples(select_files=wanted))
    if options.select is not None:
        stages.append(wds.select(options.select))
    if shuffle:
        stages.append(wds.detshuffle(bufsize=shuffle_buffer, initial=shuffle_buffer,
                                     seed=seed * 1_000_003 + 500_009))
    if options.decode is not None:
        stages.append(wds.map(options.decode))
    stages.append(wds.map(options.transform))
    if options.order_by is not None and not shuffle:
        stages.append(sorted_in_buffers(options.order_by, options.order_buffer))
    stages.append(wds.batched(options.batch_size, collation_fn=options.collate, partial=True))
    return wds.DataPipeline(*stages)


def per_rank_pipeline(urls: list[str], sizes: list[int], options: LoaderOptions, seed: int,
                      shuffle_buffer: int) -> tuple[Any, int]:
    """The pipeline of a training SplitLoader on rank r of N, and its steps per epoch: shards drawn with
    replacement (seeded by seed, rank and worker: ResampledShards), its workers each yield an equal part of the
    epoch (with_epoch), batches of batch_size / N rows. An epoch has as many steps on every rank as the
    one-process epoch, so DistributedDataParallel stays in step."""
    world = distributed.world_size()
    local = max(1, options.batch_size // world)
    steps = math.ceil(sum(sizes) / options.batch_size)
    select = options.select
    stages = [wds.ResampledShards(urls, seed=seed * 1_000_003, deterministic=True),
              tar_samples(select_files=options.members),
              # labelled samples only, so every batch is full on every rank and no rank skips a step
              wds.select(lambda raw: json.loads(raw["json"])["label"] >= 0 and (select is None or select(raw)))]
    stages.append(wds.detshuffle(bufsize=shuffle_buffer, initial=shuffle_buffer, seed=seed * 1_000_003 + 500_009))
    if options.decode is not None:
        stages.append(wds.map(options.decode))
    stages += [wds.map(options.transform), wds.batched(local, collation_fn=options.collate, partial=False)]
    per_worker = math.ceil(steps / max(1, options.num_workers))
    return wds.DataPipeline(*stages).with_epoch(per_worker), per_worker * max(1, options.num_workers)


class PooledLoader:
    """Several splits in one unshuffled pass by one pool of workers (feature extraction): the workers start
    once, not once per split. Yields (split, batch) pairs, splits in any order; a batch never mixes splits.
    Without workers the batches are exactly those of one SplitLoader per split, split after split.

    The workers divide the shards of every split together as SplitLoader's divide one split's: shards w, w+W,
    ... each, or with more workers than shards, every worker reads every shard and keeps the samples at
    positions w, w+W, ... of each split. `select` and `order_by` work as in SplitLoader; sorted runs stay
    within a split. `options.decode` is required: the pass yields decoded samples.
    """

    def __init__(self, parts: list[tuple[str, list[str], list[int]]], options: LoaderOptions):
        urls = [url for _, split_urls, _ in parts for url in split_urls]
        if not urls:
            raise PipelineError("no shards to read")
        split_of = split_of_shards(parts)
        self.workers = options.num_workers
        wanted = options.members
        stages = [wds.SimpleShardList(urls)]
        if options.num_workers > len(urls):
            stages.append(samples_of_this_worker(wanted, group_of=split_of.__getitem__))
        else:
            stages += [wds.split_by_worker, tar_samples(select_files=wanted)]
        if options.select is not None:
            stages.append(wds.select(options.select))
        decode, transform = options.decode, options.transform
        stages += [wds.map(lambda sample: (split_of[sample["__url__"]], transform(decode(sample)))),
                   batches_per_split(options.batch_size, options.collate, options.order_by, options.order_buffer)]
        self.loader = worker_loader(wds.DataPipeline(*stages), self.workers, options.pin_memory, persistent=False)
        self.steps = pooled_steps([sizes for _, _, sizes in parts], options.batch_size, self.workers)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.loader)

    def __len__(self) -> int:
        return self.steps


def split_of_shards(parts: list[tuple[str, list[str], list[int]]]) -> dict[str, str]:
    """Shard url -> its split; a shard listed under two splits is an error."""
    split_of: dict[str, str] = {}
    for split, split_urls, _ in parts:
        for url in split_urls:
            if split_of.setdefault(url, split) != split:
                raise PipelineError(f"shard {url} is listed under both '{split_of[url]}' and '{split}' in the "
                                    "shards' meta.json: a shard belongs to one split; rebuild the shards with "
                                    "the shard stage (dvc repro shard)")
    return split_of


def worker_loader(pipeline, workers: int, pin_memory: bool, persistent: bool):
    """A DataLoader over a pipeline that batches itself, in `workers` forked processes (the pipeline's transforms
    are closures: spawn would have to pickle them); persistent: the workers serve every epoch."""
    import torch

    context = "fork" if workers and "fork" in multiprocessing.get_all_start_methods() else None
    return torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=workers, multiprocessing_context=context,
                                       persistent_workers=persistent and workers > 0,
                                       prefetch_factor=4 if workers else None, pin_memory=pin_memory)


def samples_of_this_worker(select_files: Callable[[str], bool] | None = None,
                           group_of: Callable[[str], str] | None = None):
    """A pipeline stage (tar streams -> samples) for more workers than shards: every worker reads the same stream
    (same shard order: the shard shuffle is seeded alike in every worker) and keeps the samples at positions
    w, w+W, ... of it. The members of the other workers' samples are skipped unread, so W workers do not each
    copy and group every sample. select_files: which members of a kept sample to read (None: all). group_of:
    shard url -> its group (e.g. split); positions count from 0 again where the group changes."""
    def stage(streams):
        import torch

        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        state = {"key": None, "position": -1, "group": None}  # positions count from 0 on every pass (epoch)

        def mine(name: str) -> bool:
            key = (split_name(name) or (name,))[0]
            if key != state["key"]:
                state["key"], state["position"] = key, state["position"] + 1
            return state["position"] % workers == worker and (select_files is None or select_files(name))

        def restarting(shards):
            for shard in shards:  # the previous shard's samples are all out when the next shard is asked for
                group = group_of(shard["url"]) if group_of is not None else None
                if group != state["group"]:
                    state.update(group=group, key=None, position=-1)
                yield shard

        yield from tar_samples(select_files=mine)(restarting(streams))

    return stage


def batches_per_split(batch_size: int, collate: Callable, order_by: Callable[[list], list[float]] | None = None,
                      order_buffer: int = 4096) -> Callable[[Iterator[tuple[str, Any]]], Iterator[tuple[str, Any]]]:
    """A pipeline stage: (split, row) pairs -> (split, batch) pairs. Each run of one split's rows is batched on
    its own (its last batch partial), after sorting it in buffers by `order_by` when given."""
    def stage(pairs):
        for split, run in itertools.groupby(pairs, key=lambda pair: pair[0]):
            rows = (row for _, row in run)
            if order_by is not None:
                rows = sorted_in_buffers(order_by, order_buffer)(rows)
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) == batch_size:
                    yield split, collate(batch)
                    batch = []
            if batch:
                yield split, collate(batch)

    return stage


def sorted_in_buffers(keys: Callable[[list[dict]], list[float]], size: int) -> Callable[[Iterator[dict]], Iterator[dict]]:
    """A pipeline stage that sorts each run of `size` samples by their keys (`keys` maps a run to one key per
    sample, e.g. token counts from one batched tokenizer call): batches of texts of alike length pad little.
    The order changes, the set of samples and the number of batches do not."""
    def in_order(buffer: list[dict]) -> list[dict]:
        order = keys(buffer)
        return [buffer[i] for i in sorted(range(len(buffer)), key=order.__getitem__)]

    def stage(samples: Iterator[dict]) -> Iterator[dict]:
        buffer: list[dict] = []
        for sample in samples:
            buffer.append(sample)
            if len(buffer) == size:
                yield from in_order(buffer)
                buffer = []
        if buffer:
            yield from in_order(buffer)

    return stage


def steps_per_epoch(sizes: list[int], batch_size: int, workers: int) -> int:
    """Batches per epoch when worker w reads shards w, w+W, ... (or, with more workers than shards, samples
    w, w+W, ... of the whole stream) and yields its last batch partial."""
    workers = max(1, workers)
    if workers > len(sizes):
        total = sum(sizes)
        return sum(math.ceil(math.ceil(max(0, total - w) / workers) / batch_size) for w in range(workers))
    return sum(math.ceil(sum(sizes[w::workers]) / batch_size) for w in range(workers))


def pooled_steps(split_sizes: list[list[int]], batch_size: int, workers: int) -> int:
    """Batches in a PooledLoader pass over splits with these shard sizes (each split's list in order)."""
    flat = [(split, size) for split, sizes in enumerate(split_sizes) for size in sizes]
    if workers > len(flat) or workers == 0:  # per split, as one SplitLoader of that split would batch it
        return sum(steps_per_epoch(sizes, batch_size, workers) for sizes in split_sizes if sizes)
    steps = 0
    for worker in range(workers):  # shards worker, worker + W, ...: a run per split it holds shards of
        rows: dict[int, int] = {}
        for split, size in flat[worker::workers]:
            rows[split] = rows.get(split, 0) + size
        steps += sum(math.ceil(n / batch_size) for n in rows.values())
    return steps
