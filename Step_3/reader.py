"""Read the shards back: shard lists from a folder, brace patterns or URLs, and persistent loaders per split.

`--shards` may be a local folder (data/shards), a URL prefix (https://host/shards) or a `pipe:` command
with `{}` where the member's path goes (`pipe:aws s3 cp s3://bucket/shards/{} -`): anything
`webdataset.gopen` opens. meta.json is read from the same place. meta.json names each
split's shards as a brace pattern (train-{000000..000004}.tar) and their sizes, so remote reads
need no listing and steps per epoch are exact for any number of workers.
"""
from __future__ import annotations

import io
import itertools
import json
import math
import multiprocessing
import tarfile
from pathlib import Path
from typing import Any, Callable, Iterator

import braceexpand
import webdataset as wds

from core.errors import PipelineError
from Step_3.splits import SPLITS
from Step_3.tar_stream import split_name, tar_samples

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")


def is_url(location: str) -> bool:
    return "://" in location or location.startswith("pipe:")


def join(root: str | Path, name: str) -> str:
    """A member of the shard set: root/name, or root with '{}' replaced by name (pipe: commands, where the
    path sits inside the command: 'pipe:aws s3 cp s3://bucket/shards/{} -')."""
    root = str(root)
    if "{}" in root:
        return root.replace("{}", name)
    return f"{root.rstrip('/')}/{name}" if is_url(root) else str(Path(root) / name)


def read_meta(root: str | Path) -> dict:
    """The shard set's meta.json (counts, classes, tabular schema, shard names and sizes)."""
    location = join(root, "meta.json")
    try:
        if is_url(str(root)):
            with wds.gopen(location, "rb") as stream:
                return json.loads(stream.read().decode("utf-8"))
        return json.loads(Path(location).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{location} not found; run the shard stage first (dvc repro shard)") from None
    except (OSError, ValueError) as err:
        raise PipelineError(f"cannot read {location}: {err}") from None


def filled_splits(meta: dict) -> list[str]:
    """The splits that hold samples, in SPLITS order (test_unseen may be empty for some data)."""
    return [s for s in SPLITS if meta["sizes"].get(s)]


def class_counts(meta: dict) -> list[int]:
    """Labelled training examples per class, in class-id order."""
    return [meta["counts"]["train"].get(c, 0) for c in meta["classes"]]


def shard_urls(root: str | Path, split: str, meta: dict | None = None) -> list[str]:
    """The split's shard paths or URLs: meta.json's brace pattern when it has one, else a folder listing."""
    pattern = (meta or {}).get("files", {}).get(split)
    if pattern:
        return [join(root, name) for name in braceexpand.braceexpand(pattern)]
    if is_url(str(root)):
        raise PipelineError(f"{join(root, 'meta.json')} names no shards for split '{split}'")
    return sorted(str(p) for p in (Path(root) / split).glob("*.tar"))


def shard_sizes(urls: list[str], meta: dict | None, split: str) -> list[int]:
    """Samples per shard: from meta.json, else counted from the local tar headers."""
    sizes = (meta or {}).get("shard_sizes", {}).get(split)
    if sizes is not None and len(sizes) == len(urls):
        return list(sizes)
    counts = []
    for url in urls:
        with tarfile.open(url) as tar:
            counts.append(len({m.name.split(".", 1)[0] for m in tar.getmembers() if m.isfile()}))
    return counts


def steps_per_epoch(sizes: list[int], batch_size: int, workers: int) -> int:
    """Batches per epoch when worker w reads shards w, w+W, ... (or, with more workers than shards, samples
    w, w+W, ... of the whole stream) and yields its last batch partial."""
    workers = max(1, workers)
    if workers > len(sizes):
        total = sum(sizes)
        return sum(math.ceil(math.ceil(max(0, total - w) / workers) / batch_size) for w in range(workers))
    return sum(math.ceil(sum(sizes[w::workers]) / batch_size) for w in range(workers))


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


def members_to_read(decode_images: bool, decode_series: bool, raw: bool) -> Callable[[str], bool] | None:
    """Which tar members a loader reads (None: all): without the images or series it does not decode."""
    skipped = set() if decode_images or raw else set(IMAGE_KEYS)
    if not decode_series and not raw:
        skipped.add("series.npy")
    if not skipped:
        return None
    return lambda name: (split_name(name) or ("", ""))[1] not in skipped


def decode_sample(sample: dict) -> dict:
    """Raw tar members → {'id', 'image' (uint8 RGB tensor (3,H,W), see decode_image), 'text', 'meta' (json dict),
    'series' (see decode_series)}."""
    key = next((k for k in IMAGE_KEYS if k in sample), None)
    if key is None:
        raise ValueError(f"sample {sample.get('__key__')} in {sample.get('__url__')} has no image member")
    return {**decode_without_image(sample), "image": decode_image(sample[key])}


def decode_image(data: bytes):
    """Image file bytes → uint8 RGB pixels (3,H,W), channels-last in memory (a (H,W,3) array seen as (3,H,W)).

    The shard stage stores plain JPEG and PNG files (RGB or greyscale); torchvision's decoders read them to the
    same pixels as PIL's convert('RGB') (tested), and decoding plus the vision encoder's resize runs 1.8x faster
    per core than through PIL. Anything torchvision cannot decode goes through PIL. (torchvision 0.29 marks its
    decoders deprecated in favour of TorchCodec; the pinned torchvision has them.)"""
    import torch
    from torchvision.io import ImageReadMode, decode_image as tv_decode

    try:
        return tv_decode(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError:
        from PIL import Image

        return pil_pixels(Image.open(io.BytesIO(data)))


def pil_pixels(image):
    """A PIL image (any mode) → uint8 RGB pixels (3,H,W), channels-last in memory, as `decode_image` gives."""
    import numpy as np
    import torch

    return torch.from_numpy(np.array(image if image.mode == "RGB" else image.convert("RGB"))).permute(2, 0, 1)


def decode_without_image(sample: dict) -> dict:
    return {"id": sample["__key__"], "text": sample["txt"].decode("utf-8"), "meta": json.loads(sample["json"]),
            "series": decode_series(sample.get("series.npy"))}


def decode_series(data: bytes | None):
    """The engagement series member: float32 (hours, channels) with NaN rows for missing hours, or None."""
    if data is None:
        return None
    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)


def iter_samples(root: str | Path, split: str, decode_images: bool = True, meta: dict | None = None,
                 raw: bool = False) -> Iterator[dict]:
    """Every sample of a split in shard order, in this process (no workers, no shuffling); raw: the tar
    members as bytes (keys '__key__', 'jpg'/'png', 'txt', 'json', 'series.npy' when the meme has a series)."""
    wanted = members_to_read(decode_images, True, raw)  # images nobody decodes are skipped unread
    pipeline = wds.DataPipeline(wds.SimpleShardList(shard_urls(root, split, meta)), tar_samples(wanted))
    decode = decode_sample if decode_images else decode_without_image
    for sample in pipeline:
        yield sample if raw else decode(sample)


class SplitLoader:
    """One split as a persistent torch DataLoader: iterate it once per epoch; len() is the exact batch count.

    Each worker owns the shards w, w+W, ... for the whole run (workers are forked once), shuffles their
    order and then the samples in a buffer, seeded by (seed, epoch); with shuffle=False the order is the
    shard order. With more workers than shards, every worker reads every shard and keeps its share of the
    samples (`samples_of_this_worker`), so the worker count does not depend on the shard count. Partial batches
    are kept. A loader that decodes no image (decode_images False) or no series (decode_series False: its samples'
    'series' is then None) skips those members unread. `select` keeps only the raw samples it accepts (before
    decoding); len() then still counts every
    sample. `order_by` (unshuffled loaders) sorts each run of `order_buffer` transformed samples by their keys
    (a list of samples -> a key each, e.g. token counts), so batches pad little. A training loader (shuffle)
    in a run on several processes streams per rank instead (`per_rank`; see `_init_per_rank`).
    """

    def __init__(self, urls: list[str], sizes: list[int], *, transform: Callable[[dict], dict], collate: Callable,
                 batch_size: int, shuffle: bool, seed: int, num_workers: int = 0, shuffle_buffer: int = 1000,
                 decode_images: bool = True, decode_series: bool = True, raw: bool = False,
                 pin_memory: bool = False, select: Callable[[dict], bool] | None = None,
                 order_by: Callable[[list[dict]], list[float]] | None = None, order_buffer: int = 4096):
        from core import distributed

        if not urls:
            raise PipelineError("no shards to read")
        # training on several processes: each rank streams its own shards (resampled, so every rank gets a
        # full epoch whatever the shard count) in batches of its share of the global batch
        self.per_rank = shuffle and distributed.active()
        if self.per_rank:
            self._init_per_rank(urls, sizes, transform=transform, collate=collate, batch_size=batch_size, seed=seed,
                                num_workers=num_workers, shuffle_buffer=shuffle_buffer, decode_images=decode_images,
                                decode_series=decode_series, raw=raw, pin_memory=pin_memory, select=select)
            return
        # workers beyond the shard count split the samples within shards, so a GPU is fed whatever the shard count
        self.workers = num_workers
        within_shards = num_workers > len(urls)
        stages = [wds.SimpleShardList(urls)] + ([] if within_shards else [wds.split_by_worker])
        if shuffle:  # detshuffle counts its epochs itself: each pass (in each worker) reshuffles reproducibly
            stages.append(wds.detshuffle(bufsize=len(urls), initial=len(urls), seed=seed * 1_000_003))
        wanted = members_to_read(decode_images, decode_series, raw)
        stages.append(samples_of_this_worker(wanted) if within_shards else tar_samples(select_files=wanted))
        if select is not None:
            stages.append(wds.select(select))
        if shuffle:
            stages.append(wds.detshuffle(bufsize=shuffle_buffer, initial=shuffle_buffer,
                                         seed=seed * 1_000_003 + 500_009))
        if not raw:
            stages.append(wds.map(decode_sample if decode_images else decode_without_image))
        stages.append(wds.map(transform))
        if order_by is not None and not shuffle:
            stages.append(sorted_in_buffers(order_by, order_buffer))
        stages.append(wds.batched(batch_size, collation_fn=collate, partial=True))
        self.loader = worker_loader(wds.DataPipeline(*stages), self.workers, pin_memory, persistent=True)
        self.steps = steps_per_epoch(sizes, batch_size, self.workers)

    def _init_per_rank(self, urls, sizes, *, transform, collate, batch_size, seed, num_workers, shuffle_buffer,
                       decode_images, decode_series, raw, pin_memory, select) -> None:
        """Rank r of N: shards drawn with replacement (seeded by seed, rank and worker: ResampledShards), its
        workers each yield an equal part of the epoch (with_epoch), batches of batch_size / N rows. An epoch has
        as many steps on every rank as the one-process epoch, so DistributedDataParallel stays in step."""
        from core import distributed

        world = distributed.world_size()
        local = max(1, batch_size // world)
        self.workers = num_workers
        steps = math.ceil(sum(sizes) / batch_size)
        stages = [wds.ResampledShards(urls, seed=seed * 1_000_003, deterministic=True),
                  tar_samples(select_files=members_to_read(decode_images, decode_series, raw)),
                  # labelled samples only, so every batch is full on every rank and no rank skips a step
                  wds.select(lambda raw: json.loads(raw["json"])["label"] >= 0 and (select is None or select(raw)))]
        stages.append(wds.detshuffle(bufsize=shuffle_buffer, initial=shuffle_buffer, seed=seed * 1_000_003 + 500_009))
        if not raw:
            stages.append(wds.map(decode_sample if decode_images else decode_without_image))
        stages += [wds.map(transform), wds.batched(local, collation_fn=collate, partial=False)]
        per_worker = math.ceil(steps / max(1, num_workers))
        pipeline = wds.DataPipeline(*stages).with_epoch(per_worker)
        self.loader = worker_loader(pipeline, num_workers, pin_memory, persistent=True)
        self.steps = per_worker * max(1, num_workers)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return self.steps


class PooledLoader:
    """Several splits in one unshuffled pass by one pool of workers (feature extraction): the workers start
    once, not once per split. Yields (split, batch) pairs, splits in any order; a batch never mixes splits.
    Without workers the batches are exactly those of one SplitLoader per split, split after split.

    The workers divide the shards of every split together as SplitLoader's divide one split's: shards w, w+W,
    ... each, or with more workers than shards, every worker reads every shard and keeps the samples at
    positions w, w+W, ... of each split. `select` and `order_by` work as in SplitLoader; sorted runs stay
    within a split.
    """

    def __init__(self, parts: list[tuple[str, list[str], list[int]]], *, transform: Callable[[dict], Any],
                 collate: Callable, batch_size: int, num_workers: int = 0, decode_images: bool = True,
                 decode_series: bool = True, pin_memory: bool = False, select: Callable[[dict], bool] | None = None,
                 order_by: Callable[[list], list[float]] | None = None, order_buffer: int = 4096):
        urls = [url for _, split_urls, _ in parts for url in split_urls]
        if not urls:
            raise PipelineError("no shards to read")
        split_of: dict[str, str] = {}
        for split, split_urls, _ in parts:
            for url in split_urls:
                if split_of.setdefault(url, split) != split:
                    raise PipelineError(f"shard {url} is listed under both '{split_of[url]}' and '{split}' in the "
                                        "shards' meta.json: a shard belongs to one split; rebuild the shards with "
                                        "the shard stage (dvc repro shard)")
        self.workers = num_workers
        wanted = members_to_read(decode_images, decode_series, False)
        stages = [wds.SimpleShardList(urls)]
        if num_workers > len(urls):
            stages.append(samples_of_this_worker(wanted, group_of=split_of.__getitem__))
        else:
            stages += [wds.split_by_worker, tar_samples(select_files=wanted)]
        if select is not None:
            stages.append(wds.select(select))
        decode = decode_sample if decode_images else decode_without_image
        stages += [wds.map(lambda sample: (split_of[sample["__url__"]], transform(decode(sample)))),
                   batches_per_split(batch_size, collate, order_by, order_buffer)]
        self.loader = worker_loader(wds.DataPipeline(*stages), self.workers, pin_memory, persistent=False)
        self.steps = pooled_steps([sizes for _, _, sizes in parts], batch_size, self.workers)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.loader)

    def __len__(self) -> int:
        return self.steps


def worker_loader(pipeline, workers: int, pin_memory: bool, persistent: bool):
    """A DataLoader over a pipeline that batches itself, in `workers` forked processes (the pipeline's transforms
    are closures: spawn would have to pickle them); persistent: the workers serve every epoch."""
    import torch

    context = "fork" if workers and "fork" in multiprocessing.get_all_start_methods() else None
    return torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=workers, multiprocessing_context=context,
                                       persistent_workers=persistent and workers > 0,
                                       prefetch_factor=4 if workers else None, pin_memory=pin_memory)


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


class ShardReader:
    """The shard set at `root` (folder or URL prefix) and its meta.json."""

    def __init__(self, root: str | Path, meta: dict | None = None):
        self.root = str(root)
        self.meta = meta if meta is not None else read_meta(root)

    def urls(self, split: str) -> list[str]:
        urls = shard_urls(self.root, split, self.meta)
        if not urls:
            raise PipelineError(f"no shards for split '{split}' in {self.root}; rerun the shard stage")
        return urls

    def samples(self, split: str, decode_images: bool = True, raw: bool = False) -> Iterator[dict]:
        return iter_samples(self.root, split, decode_images, self.meta, raw=raw)

    def loader(self, split: str, *, transform: Callable[[dict], dict], collate: Callable, batch_size: int,
               shuffle: bool = False, seed: int = 0, num_workers: int = 0, decode_images: bool = True,
               device: str = "cpu", **options) -> SplitLoader:
        """A persistent loader over one split; pinned memory when the batches go to a CUDA device."""
        urls = self.urls(split)
        return SplitLoader(urls, shard_sizes(urls, self.meta, split), transform=transform, collate=collate,
                           batch_size=batch_size, shuffle=shuffle, seed=seed, num_workers=num_workers,
                           decode_images=decode_images, pin_memory=str(device).startswith("cuda"), **options)

    def pooled_loader(self, splits: list[str], *, transform: Callable[[dict], Any], collate: Callable,
                      batch_size: int, num_workers: int = 0, decode_images: bool = True, device: str = "cpu",
                      **options) -> PooledLoader:
        """One unshuffled pass over several splits by one pool of workers, yielding (split, batch)."""
        parts = [(split, urls, shard_sizes(urls, self.meta, split)) for split in splits for urls in [self.urls(split)]]
        return PooledLoader(parts, transform=transform, collate=collate, batch_size=batch_size,
                            num_workers=num_workers, decode_images=decode_images,
                            pin_memory=str(device).startswith("cuda"), **options)
