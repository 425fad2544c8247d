"""Read the shards back: a WebDataset pipeline of decoded samples, batched into a torch DataLoader."""
from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Callable, Iterator

import webdataset as wds

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")


def shard_urls(shard_dir: str | Path, split: str) -> list[str]:
    """Sorted shard paths of one split."""
    urls = sorted(str(p) for p in (Path(shard_dir) / split).glob("*.tar"))
    return urls


def read_meta(shard_dir: str | Path) -> dict:
    return json.loads((Path(shard_dir) / "meta.json").read_text(encoding="utf-8"))


def decode_sample(sample: dict) -> dict:
    """Raw tar members → {'id', 'image' (PIL RGB), 'text', 'meta' (json dict)}."""
    from PIL import Image
    import io

    key = next((k for k in IMAGE_KEYS if k in sample), None)
    if key is None:
        raise ValueError(f"sample {sample.get('__key__')} in {sample.get('__url__')} has no image member")
    image = Image.open(io.BytesIO(sample[key])).convert("RGB")
    meta = json.loads(sample["json"])
    return {"id": sample["__key__"], "image": image, "text": sample["txt"].decode("utf-8"), "meta": meta}


def iter_samples(shard_dir: str | Path, split: str, decode_images: bool = True) -> Iterator[dict]:
    """Every sample of a split in shard order, in this process (no workers, no shuffling)."""
    pipeline = wds.DataPipeline(wds.SimpleShardList(shard_urls(shard_dir, split)), wds.tarfile_to_samples())
    for sample in pipeline:
        if decode_images:
            yield decode_sample(sample)
        else:
            yield {"id": sample["__key__"], "text": sample["txt"].decode("utf-8"), "meta": json.loads(sample["json"])}


def make_loader(shard_dir: str | Path, split: str, *, transform: Callable[[dict], dict], collate: Callable,
                batch_size: int, shuffle: bool, seed: int, epoch: int = 0, num_workers: int = 0,
                shuffle_buffer: int = 1000, decode_images: bool = True, raw: bool = False):
    """A DataLoader over one split: optional seeded shard + sample shuffling, decode, transform, batch.

    Args:
        transform: maps a decoded sample dict (or, with raw=True, the tar members as bytes) to the
            model's per-sample inputs.
        collate: maps a list of transformed samples to a batch.
        epoch: mixed into the shuffle seed so each epoch sees a different, reproducible order.
    """
    import torch

    urls = shard_urls(shard_dir, split)
    if not urls:
        raise FileNotFoundError(f"no shards for split '{split}' in {shard_dir}")
    stages = [wds.SimpleShardList(urls)]
    if shuffle:
        stages.append(wds.detshuffle(bufsize=len(urls), initial=len(urls), seed=seed * 1_000_003, epoch=epoch))
    stages += [wds.split_by_worker, wds.tarfile_to_samples()]
    if shuffle:
        stages.append(wds.detshuffle(bufsize=shuffle_buffer, initial=shuffle_buffer, seed=seed * 1_000_003 + 500_009,
                                     epoch=epoch))
    if not raw:
        stages.append(wds.map(decode_sample if decode_images else _decode_without_image))
    stages += [wds.map(transform), wds.batched(batch_size, collation_fn=collate, partial=True)]
    pipeline = wds.DataPipeline(*stages)
    workers = min(num_workers, len(urls))
    # transforms are closures: fork them into workers (spawn would have to pickle them)
    context = "fork" if workers and "fork" in multiprocessing.get_all_start_methods() else None
    return torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=workers, multiprocessing_context=context,
                                       persistent_workers=False, prefetch_factor=4 if workers else None)


def _decode_without_image(sample: dict) -> dict:
    return {"id": sample["__key__"], "text": sample["txt"].decode("utf-8"), "meta": json.loads(sample["json"])}
