"""Read the shards back: shard lists from a folder, brace patterns or URLs, sample decoding, and loaders per split
(built by Step_3.loaders).

`--shards` may be a local folder (data/shards), a URL prefix (https://host/shards) or a `pipe:` command
with `{}` where the member's path goes (`pipe:aws s3 cp s3://bucket/shards/{} -`): anything
`webdataset.gopen` opens. meta.json is read from the same place. meta.json names each
split's shards as a brace pattern (train-{000000..000004}.tar) and their sizes, so remote reads
need no listing and steps per epoch are exact for any number of workers.
"""
from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import braceexpand
import webdataset as wds

from core.errors import PipelineError
from Step_3.loaders import LoaderOptions, PooledLoader, SplitLoader
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


def members_to_read(decode_images: bool, decode_series: bool, raw: bool) -> Callable[[str], bool] | None:
    """Which tar members a loader reads (None: all): without the images or series it does not decode."""
    skipped = set() if decode_images or raw else set(IMAGE_KEYS)
    if not decode_series and not raw:
        skipped.add("series.npy")
    if not skipped:
        return None
    return lambda name: (split_name(name) or ("", ""))[1] not in skipped


def sample_decoder(decode_images: bool) -> Callable[[dict], dict]:
    """Raw tar members -> a decoded sample, with its image (decode_sample) or without (decode_without_image)."""
    return decode_sample if decode_images else decode_without_image


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
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as tv_decode

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
    decode = sample_decoder(decode_images)
    for sample in pipeline:
        yield sample if raw else decode(sample)



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
               decode_series: bool = True, raw: bool = False, shuffle_buffer: int = 1000, device: str = "cpu",
               **options) -> SplitLoader:
        """A persistent loader over one split (see SplitLoader); pinned memory when the batches go to a CUDA
        device. A loader that decodes no image (decode_images False) or no series (decode_series False: its
        samples' 'series' is then None) skips those members unread; raw: the samples are the tar members as
        bytes. options: LoaderOptions' select, order_by, order_buffer."""
        urls = self.urls(split)
        sizes = shard_sizes(urls, self.meta, split)
        loading = LoaderOptions(transform=transform, collate=collate, batch_size=batch_size, num_workers=num_workers,
                                pin_memory=str(device).startswith("cuda"),
                                members=members_to_read(decode_images, decode_series, raw),
                                decode=None if raw else sample_decoder(decode_images), **options)
        return SplitLoader(urls, sizes, loading, shuffle=shuffle, seed=seed, shuffle_buffer=shuffle_buffer)

    def pooled_loader(self, splits: list[str], *, transform: Callable[[dict], Any], collate: Callable,
                      batch_size: int, num_workers: int = 0, decode_images: bool = True, decode_series: bool = True,
                      device: str = "cpu", **options) -> PooledLoader:
        """One unshuffled pass over several splits by one pool of workers, yielding (split, batch) (see
        PooledLoader); decode_images, decode_series and options as in `loader`."""
        parts = [(split, urls, shard_sizes(urls, self.meta, split)) for split in splits for urls in [self.urls(split)]]
        loading = LoaderOptions(transform=transform, collate=collate, batch_size=batch_size, num_workers=num_workers,
                                pin_memory=str(device).startswith("cuda"),
                                members=members_to_read(decode_images, decode_series, False),
                                decode=sample_decoder(decode_images), **options)
        return PooledLoader(parts, loading)
