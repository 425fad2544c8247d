"""The fast tar reader (Step_3.tar_stream): the same samples as webdataset's tarfile path, long names, members
skipped unread from files and pipes, and clear errors for corrupt or truncated shards."""
import io
import tarfile

import pytest
import webdataset as wds

from core.errors import PipelineError
from Step_3.reader import ShardReader, members_to_read
from Step_3.tar_stream import split_name, tar_samples
from tests.test_feature_cache import write_shard_set


def _tar(path, members, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _samples(url, stage):
    return list(wds.DataPipeline(wds.SimpleShardList([url]), stage))


def _plain(samples):
    return [{k: v for k, v in s.items() if k != "__local_path__"} for s in samples]


LONG = "d" * 120 + "/meme-0001"  # beyond ustar's 100-byte name field
MEMBERS = [("a/b.c/x1.jpg", b"\xff\xd8jpeg"), ("a/b.c/x1.TXT", b"caption"), ("a/b.c/x1.series.npy", b"npy"),
           ("folder", None), ("README", b"no extension: not a sample member"), ("x2.json", b"{}"),
           (LONG + ".txt", b"long"), (LONG + ".json", b"{\"label\": 1}"), ("\u00e9t\u00e9.txt", b"non-ascii name")]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_same_samples_as_webdataset(tmp_path, fmt):
    members = MEMBERS if fmt != tarfile.USTAR_FORMAT else [m for m in MEMBERS if len(m[0]) < 100 and m[0].isascii()]
    path = str(tmp_path / "shard.tar")
    _tar(path, members, fmt)
    ours, theirs = _samples(path, tar_samples()), _plain(_samples(path, wds.tarfile_to_samples()))
    assert ours == theirs and len(ours) >= 2
    assert ours[0] == {"__key__": "a/b.c/x1", "__url__": path, "jpg": b"\xff\xd8jpeg", "txt": b"caption",
                       "series.npy": b"npy"}


def test_project_shards_read_alike_and_members_are_skipped_unread(tiny_pipeline, tmp_path):
    reader = write_shard_set(tiny_pipeline, tmp_path / "shards")
    for url in reader.urls("train"):
        assert _samples(url, tar_samples()) == _plain(_samples(url, wds.tarfile_to_samples()))
        for location in (url, f"pipe:cat {url}"):  # a file seeks past skipped data, a pipe reads past it
            text_only = _samples(location, tar_samples(members_to_read(False, False, False)))
            assert text_only and all(set(s) == {"__key__", "__url__", "txt", "json"} for s in text_only)
            assert [s["__key__"] for s in text_only] == [s["__key__"] for s in _samples(url, tar_samples())]


def test_loader_without_series_decodes_every_other_member(tiny_pipeline, tmp_path):
    reader = ShardReader(write_shard_set(tiny_pipeline, tmp_path / "shards").root)
    full = {s["id"]: s for s in reader.samples("train", decode_images=False)}
    assert any(s["series"] is not None for s in full.values()), "the tiny profile has series"
    loader = reader.loader("train", transform=lambda s: s, collate=list, batch_size=4, decode_images=False,
                           decode_series=False)
    rows = [row for batch in loader for row in batch]
    assert sorted(r["id"] for r in rows) == sorted(full)
    assert all(r["series"] is None and r["text"] == full[r["id"]]["text"] and r["meta"] == full[r["id"]]["meta"]
               for r in rows)


def test_corrupt_truncated_and_duplicate_shards_are_clear_errors(tmp_path):
    path = tmp_path / "shard.tar"
    _tar(str(path), [("m1.txt", b"x" * 700), ("m1.json", b"{}")])
    data = path.read_bytes()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(data[:130] + b"9" + data[131:])  # one byte of the first header's size field
    with pytest.raises(PipelineError, match=r"bad.tar: corrupt tar header at byte 0 .*dvc repro shard"):
        _samples(str(bad), tar_samples())
    short = tmp_path / "short.tar"
    short.write_bytes(data[:512 + 300])  # the first member's data cut off
    with pytest.raises(PipelineError, match=r"short.tar: truncated tar member m1.txt"):
        _samples(str(short), tar_samples())
    twice = tmp_path / "twice.tar"
    _tar(str(twice), [("m1.txt", b"a"), ("m1.txt", b"b")])
    with pytest.raises(PipelineError, match="member m1.txt appears twice in sample m1"):
        _samples(str(twice), tar_samples())
    with pytest.raises(PipelineError, match="cannot open shard"):
        _samples(str(tmp_path / "missing.tar"), tar_samples())


def test_names_split_at_the_first_dot_of_the_last_component():
    assert split_name("a/b.c/x.series.npy") == ("a/b.c/x", "series.npy")
    assert split_name("x.JPG") == ("x", "jpg")
    assert split_name("README") is None and split_name(".hidden") is None and split_name("a/.b") is None
