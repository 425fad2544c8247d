"""The shard reader: shard lists from folders, brace patterns and URLs; exact steps per epoch with workers."""
import io
import json
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from core.errors import PipelineError
from Step_3.loaders import pooled_steps, steps_per_epoch
from Step_3.reader import ShardReader, decode_image, read_meta, shard_urls
from Step_3.shard import shard_pattern, write_shards


@pytest.fixture(scope="module")
def shards(tiny_pipeline, tmp_path_factory):
    t = tiny_pipeline
    out = tmp_path_factory.mktemp("shards")
    sizes = write_shards(t["rows"], t["labels"], t["splits"], out, t["shard_cfg"], 40_000_000)
    meta = {"files": {s: shard_pattern(s, len(n)) for s, n in sizes.items()}, "shard_sizes": sizes}
    (out / "meta.json").write_text(json.dumps(meta))
    return out, {s: n for s, n in sizes.items() if n}  # the splits the tiny data holds (no val_unseen)


def test_shard_sizes_match_the_tars(shards):
    out, sizes = shards
    reader = ShardReader(out)
    for split, expected in sizes.items():
        counted = Counter(s["id"] for s in reader.samples(split, decode_images=False))
        assert sum(expected) == len(counted) and all(n == 1 for n in counted.values())
    assert len(sizes["train"]) >= 2, "the tiny profile writes several train shards"


def test_brace_pattern_url_and_folder_name_the_same_shards(shards):
    out, _ = shards
    by_folder = shard_urls(out, "train")  # no meta: listing
    by_pattern = ShardReader(out).urls("train")  # meta.json's brace pattern
    assert by_folder == by_pattern
    url = f"pipe:cat {out}"  # any webdataset URL; 'pipe:' needs no network
    remote = ShardReader(url)
    assert remote.meta == read_meta(out)
    assert remote.urls("train") == [f"pipe:cat {p}" for p in by_folder]
    local_ids = [s["id"] for s in ShardReader(out).samples("train", decode_images=False)]
    assert [s["id"] for s in remote.samples("train", decode_images=False)] == local_ids


@pytest.mark.parametrize("workers", [0, 2, "more than shards"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_steps_per_epoch_are_exact_with_workers(shards, workers, shuffle):
    """Every sample once per epoch, exactly len() batches, with workers up to and beyond the shard count."""
    out, sizes = shards
    workers = len(sizes["train"]) + 1 if workers == "more than shards" else workers
    reader = ShardReader(out)
    loader = reader.loader("train", transform=lambda s: s["id"], collate=list, batch_size=3, shuffle=shuffle, seed=4,
                           num_workers=workers, decode_images=False)
    for _ in range(2):  # the same persistent loader serves every epoch
        batches = [b for b in loader]
        assert len(batches) == len(loader)
        assert sorted(i for b in batches for i in b) == sorted(s["id"] for s in reader.samples("train", False))
    assert len(loader) == steps_per_epoch(sizes["train"], 3, workers)


def test_partial_batches_of_each_worker_are_counted():
    assert steps_per_epoch([5, 5, 5], batch_size=4, workers=1) == 4  # 15 samples
    assert steps_per_epoch([5, 5, 5], batch_size=4, workers=2) == 5  # worker 0: 10 -> 3, worker 1: 5 -> 2
    assert steps_per_epoch([5, 5, 5], batch_size=4, workers=4) == 4  # within shards: 4, 4, 4, 3 samples -> 1 each
    assert steps_per_epoch([5, 5, 5], batch_size=2, workers=4) == 8  # 4, 4, 4, 3 samples -> 2 each


def test_one_pool_over_splits_gives_each_splits_batches_without_workers(shards):
    """Without workers, one pooled pass yields exactly the batches of one loader per split, split after split
    (sorted runs included): features from it are the per-split ones."""
    out, sizes = shards
    reader, splits = ShardReader(out), sorted(sizes)
    order_by = lambda rows: [sum(map(ord, r)) % 3 for r in rows]  # noqa: E731 - any key that reorders
    options = dict(transform=lambda s: s["id"], collate=list, batch_size=3, decode_images=False,
                   order_by=order_by, order_buffer=5)
    pooled = [(split, batch) for split, batch in reader.pooled_loader(splits, **options)]
    per_split = [(split, batch) for split in splits for batch in reader.loader(split, **options)]
    assert pooled == per_split and len(reader.pooled_loader(splits, **options)) == len(per_split)
    in_shard_order = [(split, batch) for split in splits
                      for batch in reader.loader(split, **{**options, "order_by": None})]
    assert pooled != in_shard_order  # the key did reorder, within each split


@pytest.mark.parametrize("workers", [2, "more than shards"])
def test_one_pool_over_splits_with_workers_never_mixes_splits(shards, workers):
    out, sizes = shards
    reader, splits = ShardReader(out), sorted(sizes)
    workers = sum(len(n) for n in sizes.values()) + 1 if workers == "more than shards" else workers
    loader = reader.pooled_loader(splits, transform=lambda s: s["id"], collate=list, batch_size=2,
                                  num_workers=workers, decode_images=False)
    batches = list(loader)
    assert len(batches) == len(loader) == pooled_steps([sizes[s] for s in splits], 2, workers)
    for split in splits:
        got = sorted(i for s, batch in batches if s == split for i in batch)
        assert got == sorted(x["id"] for x in reader.samples(split, False))
    assert sum(len(b) for _, b in batches) == sum(sum(n) for n in sizes.values())


def test_a_shard_listed_under_two_splits_is_refused(shards):
    """One pass labels each sample with its shard's split, so a shard may belong to one split only."""
    out, sizes = shards
    reader = ShardReader(out)
    first, second = sorted(sizes)[:2]
    reader.meta["files"][second] = reader.meta["files"][first]
    reader.meta["shard_sizes"][second] = reader.meta["shard_sizes"][first]
    with pytest.raises(PipelineError, match=f"listed under both '{first}' and '{second}'.*meta.json"):
        reader.pooled_loader([first, second], transform=lambda s: s["id"], collate=list, batch_size=2)


def test_pooled_steps_count_each_workers_runs_per_split():
    assert pooled_steps([[5, 5], [3]], batch_size=4, workers=0) == 3 + 1
    assert pooled_steps([[5, 5], [3]], batch_size=4, workers=2) == 2 + 1 + 2  # worker 0: 5 + 3 rows, worker 1: 5
    assert pooled_steps([[5, 5], [3]], batch_size=4, workers=4) == (1 + 1 + 1 + 1) + 3  # within shards, per split


def test_missing_meta_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match="meta.json not found; run the shard stage"):
        ShardReader(tmp_path)


def test_workers_beyond_the_shard_count_decode_only_their_own_samples(shards):
    """With more workers than shards each worker skips the other workers' members unread; with images decoded,
    every sample still arrives once, whole."""
    out, sizes = shards
    reader = ShardReader(out)
    loader = reader.loader("train", transform=lambda s: (s["id"], tuple(s["image"].shape), s["meta"]["id"]), collate=list,
                           batch_size=2, shuffle=False, seed=0, num_workers=len(sizes["train"]) + 2)
    rows = [row for batch in loader for row in batch]
    assert sorted(i for i, _, _ in rows) == sorted(s["id"] for s in reader.samples("train", False))
    assert all(i == meta_id and size[0] == 3 and size[1] > 0 for i, size, meta_id in rows)
    assert len(loader) == steps_per_epoch(sizes["train"], 2, len(sizes["train"]) + 2)


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_decoded_pixels_equal_pils_for_every_file_kind_the_shards_hold(fmt, mode):
    """The shard stage stores plain JPEG and PNG files, RGB or greyscale: torchvision's decoders give exactly
    PIL's convert('RGB') pixels for them; other files (here WebP with alpha) go through PIL."""
    rng = np.random.default_rng(3)
    smooth = np.kron(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8), np.ones((9, 11, 1), dtype=np.uint8))
    image = Image.fromarray(smooth).convert(mode)  # 108 x 110: sizes that are not multiples of the JPEG blocks
    data = _encoded(image, fmt, quality=83) if fmt == "JPEG" else _encoded(image, fmt)
    expected = pil_to_tensor(Image.open(io.BytesIO(data)).convert("RGB"))
    pixels = decode_image(data)
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 108, 110)
    assert torch.equal(pixels, expected)


def test_files_torchvision_cannot_decode_go_through_pil():
    rgba = Image.new("RGBA", (20, 16), (10, 200, 30, 128))
    data = _encoded(rgba, "TIFF")
    assert torch.equal(decode_image(data), pil_to_tensor(Image.open(io.BytesIO(data)).convert("RGB")))
