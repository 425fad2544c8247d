"""Feature cache: a second run embeds nothing, one new meme embeds one, another encoder misses the cache."""
import json
from types import SimpleNamespace

import pytest
import torch

from Step_3.reader import ShardReader
from Step_3.shard import shard_pattern, write_shards
from Step_4.context import ExpertContext
from Step_4.expert import Expert
from Step_4.features.cache import FeatureCache, fingerprint
from Step_4.features.passes import embed_splits
from Step_4.text.encoder import TextEncoder
from Step_4.vision.encoder import VisionEncoder

CFG = SimpleNamespace(embed_batch_size=8, num_workers=0, runtime="torch", precision="fp32")


def write_shard_set(t: dict, out, drop: int | None = None) -> ShardReader:
    keep = [i for i in range(len(t["rows"])) if i != drop]
    rows, labels, splits = ([seq[i] for i in keep] for seq in (t["rows"], t["labels"], t["splits"]))
    sizes = write_shards(rows, labels, splits, out, t["shard_cfg"], 40_000_000)
    meta = {"files": {s: shard_pattern(s, len(n)) for s, n in sizes.items()}, "shard_sizes": sizes,
            "sizes": {s: sum(n) for s, n in sizes.items()}, "tabular": {}}
    (out / "meta.json").write_text(json.dumps(meta))
    return ShardReader(out)


def counting(expert: Expert) -> list[int]:
    """Count the samples the encoder actually runs on."""
    seen, forward = [], expert.forward_features
    expert.forward_features = lambda batch: (seen.append(len(batch["id"])), forward(batch))[1]
    return seen


@pytest.fixture(scope="module")
def vision_expert():
    torch.manual_seed(0)
    expert = Expert(modality="vision", encoder=VisionEncoder(weights="none"), n_classes=2, head_hidden=8, dropout=0.0)
    expert.encoder.freeze(0)
    return expert


def test_second_run_embeds_nothing_and_one_new_meme_embeds_one(tiny_pipeline, tmp_path, vision_expert):
    t, expert, cache_dir = tiny_pipeline, vision_expert, tmp_path / "cache"
    first_train = next(i for i, s in enumerate(t["splits"]) if s == "train")
    small = write_shard_set(t, tmp_path / "small", drop=first_train)
    seen = counting(expert)

    def run(reader):
        seen.clear()
        ctx = ExpertContext(reader=reader, device="cpu", feature_cache=cache_dir)
        data = embed_splits(expert, CFG, ctx, FeatureCache(cache_dir, fingerprint(expert.encoder)))
        return data, sum(seen)

    cold, embedded = run(small)
    assert embedded == len(t["rows"]) - 1 == sum(d["embedded"] for d in cold.values())
    again, embedded = run(small)
    assert embedded == 0 and all(d["embedded"] == 0 for d in again.values())
    for split in cold:
        assert again[split]["ids"] == cold[split]["ids"]
        assert torch.equal(again[split]["features"], cold[split]["features"])
        assert torch.equal(again[split]["present"], cold[split]["present"])
        assert torch.equal(again[split]["labels"], cold[split]["labels"])

    grown, embedded = run(write_shard_set(t, tmp_path / "full"))
    assert embedded == 1 and grown["train"]["embedded"] == 1
    assert len(grown["train"]["ids"]) == len(cold["train"]["ids"]) + 1

    # the cached path gives the features and logits the plain pass over the shards gives
    plain = embed_splits(expert, CFG, ExpertContext(reader=write_shard_set(t, tmp_path / "plain"), device="cpu"))
    for split in plain:
        assert plain[split]["ids"] == grown[split]["ids"]
        torch.testing.assert_close(grown[split]["features"], plain[split]["features"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(grown[split]["logits"], plain[split]["logits"], atol=1e-4, rtol=1e-4)
        assert torch.equal(grown[split]["true_labels"], plain[split]["true_labels"])


def test_one_pool_of_workers_over_every_split_gives_the_features_of_no_workers(tiny_pipeline, tmp_path,
                                                                             vision_expert):
    """Every split is embedded in one pass of one worker pool (workers start once): each split gets its own
    samples and the same features as the pass without workers, cached or not."""
    ctx = ExpertContext(reader=write_shard_set(tiny_pipeline, tmp_path / "shards"), device="cpu")
    alone = embed_splits(vision_expert, CFG, ctx)
    pooled = embed_splits(vision_expert, SimpleNamespace(**{**vars(CFG), "num_workers": 3}), ctx)
    cache = FeatureCache(tmp_path / "cache", fingerprint(vision_expert.encoder))
    cached = embed_splits(vision_expert, SimpleNamespace(**{**vars(CFG), "num_workers": 3}), ctx, cache)
    assert set(alone) == set(pooled) == set(cached) == set(ctx.splits) and len(ctx.splits) >= 3
    for split in alone:
        assert pooled[split]["ids"] == cached[split]["ids"] == alone[split]["ids"]
        assert cached[split]["embedded"] == len(alone[split]["ids"])
        for got in (pooled[split], cached[split]):
            torch.testing.assert_close(got["features"], alone[split]["features"], atol=1e-5, rtol=1e-5)
            assert torch.equal(got["labels"], alone[split]["labels"])


def test_another_encoder_or_weights_never_reads_stale_features(tmp_path):
    torch.manual_seed(0)
    encoder = VisionEncoder(weights="none")
    before = fingerprint(encoder)
    assert fingerprint(encoder) == before
    with torch.no_grad():
        next(encoder.parameters()).add_(1e-3)
    assert fingerprint(encoder) != before
    encoder.data_config = {**encoder.data_config, "input_size": (3, 160, 160)}
    assert fingerprint(encoder) != before

    cache = FeatureCache(tmp_path, before)
    cache.add(["k1", "k2"], torch.ones(2, 3), torch.tensor([True, False]))
    cache.save()
    reopened = FeatureCache(tmp_path, before)
    features, present = reopened.get(["k2", "k1"])
    assert len(reopened) == 2 and present.tolist() == [False, True] and features.shape == (2, 3)
    assert "k1" not in FeatureCache(tmp_path, "another-encoder")


def test_old_fingerprints_are_pruned_and_a_damaged_file_is_rebuilt(tmp_path):
    for i in range(5):
        cache = FeatureCache(tmp_path, f"fp{i}", keep=3)
        cache.add([f"k{i}"], torch.zeros(1, 2), torch.tensor([True]))
        cache.save()
    assert sorted(p.stem for p in tmp_path.glob("*.safetensors")) == ["fp2", "fp3", "fp4"]
    (tmp_path / "fp4.safetensors").write_bytes(b"torn")
    assert len(FeatureCache(tmp_path, "fp4")) == 0


def test_text_content_key_is_the_text_bytes():
    key = TextEncoder.content_key({"txt": b"same words"})
    assert key == TextEncoder.content_key({"txt": b"same words", "png": b"another image"})
    assert key != TextEncoder.content_key({"txt": b"other words"})
    assert VisionEncoder.content_key({"png": b"abc", "txt": b"x"}) != VisionEncoder.content_key({"png": b"abd"})


def test_a_cached_rerun_trains_the_same_heads(tiny_pipeline, tmp_path):
    """Encoding consumes random numbers and a cache hit does not; the trained heads must not notice."""
    from core.params import build
    from Step_4.vision import plugin as vision
    from Step_4.vision.config import VisionExpertConfig

    reader = write_shard_set(tiny_pipeline, tmp_path / "shards")
    reader.meta.update(classes=["benign", "abuse_hate"], positive_index=1,
                       counts={"train": {"benign": 10, "abuse_hate": 10}})
    cfg = build(VisionExpertConfig, {"model": "convnext_atto", "weights": "none", "head_hidden": 8,
                                     "embed_batch_size": 16, "train": {"epochs": 2, "seeds": [0, 1]}}, where="test")
    ctx = ExpertContext(reader=reader, device="cpu", feature_cache=tmp_path / "cache")
    cold, warm = vision.train(cfg, ctx), vision.train(cfg, ctx)
    assert warm.data["train"]["embedded"] == 0 < cold.data["train"]["embedded"]
    assert cold.extra["loader"] == {"embed_batch_size": 16, "num_workers": 0}  # 'auto' workers: none on the CPU
    for a, b in zip(cold.runs, warm.runs):
        for split in a:
            assert (a[split] == b[split]).all(), split
