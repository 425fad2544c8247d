"""The temporal modality: synthetic engagement series, the series.npy shard member, the temporal expert (masking,
both architectures, the stage) and its retraining inside every cross-validation fold."""
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import PipelineError
from Step_1.synthetic.engagement import CHANNELS
from Step_1.synthetic.generate import make_engagement, make_record
from Step_1.synthetic.options import SyntheticOptions
from Step_4.temporal.plugin import SeriesFeatureEncoder, series_arrays

STEPS = 72


def write_params(folder: Path, overrides: dict | None = None) -> None:
    """The repository's params.yaml with `overrides` merged in, written to `folder`."""
    import yaml

    from tools.smoke import deep_merge

    root = Path(__file__).resolve().parents[1]
    params = deep_merge(yaml.safe_load((root / "params.yaml").read_text()), overrides or {})
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


def records_with_series(count: int, opts: SyntheticOptions) -> list[tuple[dict, np.ndarray | None]]:
    out = []
    for i in range(count):
        record = make_record(i, opts)[0]
        out.append((record, make_engagement(record, i, opts, STEPS)))
    return out


def test_synthetic_series_are_seeded_weak_and_have_gaps():
    opts = SyntheticOptions()
    rows = records_with_series(1500, opts)
    again = records_with_series(20, opts)
    for (r, s), (r2, s2) in zip(rows, again):  # same (seed, index): same series, and the record is unchanged
        assert r == r2 and ((s is None and s2 is None) or np.array_equal(s, s2, equal_nan=True))
    present = [s for _, s in rows if s is not None]
    assert all(s.shape == (STEPS, len(CHANNELS)) and s.dtype == np.float32 for s in present)
    assert 0.05 < 1 - len(present) / len(rows) < 0.15  # series_missing_rate 0.1
    rows_missing = np.array([np.isnan(s).all(1).sum() for s in present])
    assert (rows_missing > 0).mean() > 0.25  # gaps and single missing hours
    assert all((np.isnan(s).all(1) | ~np.isnan(s).any(1)).all() for s in present)  # a missing hour: every channel
    assert all((np.nan_to_num(s) >= 0).all() for s in present)
    pushed = {h: np.mean(["push" in r["meta"]["engagement"] for r, s in rows if s is not None and r["meta"]["hostile"] == h])
              for h in (True, False)}
    assert pushed[True] > 3 * pushed[False]  # coordination rides on the hidden account intent
    ratio = {label: np.median([np.nansum(s[:, 3]) / max(1.0, np.nansum(s[:, 0])) for r, s in rows
                               if s is not None and r["meta"]["true_label"] == label]) for label in ("hateful", "benign")}
    assert ratio["hateful"] > 1.3 * ratio["benign"]  # reports: a weak clue to the true label


def test_the_synthetic_series_needs_its_channels(tmp_path):
    from Step_1.config import SourceConfig
    from Step_1.series import SeriesConfig
    from Step_1.sources import import_synthetic

    source = SourceConfig(name="syn", kind="synthetic", label_map={}, options={"count": 2, "image_size": 64})
    with pytest.raises(PipelineError, match="prepare.series.channels"):
        import_synthetic(source, tmp_path, 1, SeriesConfig(channels=["views", "likes"]))


def test_shards_carry_the_series_member(stages, tmp_path, tiny_pipeline):
    from Step_3.reader import ShardReader

    write_params(tmp_path)
    stages.shards()
    reader = ShardReader(tmp_path / "shards")
    assert reader.meta["series"]["steps"] == STEPS and reader.meta["series"]["channels"] == list(CHANNELS)
    expected = {r["id"]: r["series"] for r in tiny_pipeline["records"]}
    seen = 0
    for split in ("train", "val", "test_seen", "test_unseen"):
        if not reader.meta["sizes"].get(split):
            continue
        for sample in reader.samples(split, decode_images=False):
            path = expected[sample["id"]]
            assert (sample["series"] is None) == (path is None)
            if path:
                assert np.array_equal(sample["series"], np.load(path), equal_nan=True)
                seen += 1
    assert seen > 0 and sum(reader.meta["series"]["with_series"].values()) == seen


def test_a_changed_series_file_fails_the_shard_stage(tiny_pipeline, tmp_path):
    from Step_3.shard import series_payload

    row = next(r for r in tiny_pipeline["manifest"] if r["series"])
    assert series_payload(row, (STEPS, len(CHANNELS))) == Path(row["series"]).read_bytes()
    with pytest.raises(PipelineError, match="changed or vanished"):
        series_payload({**row, "series_sha256": "0" * 64}, (STEPS, len(CHANNELS)))
    with pytest.raises(PipelineError, match="expected float32"):
        series_payload(row, (24, len(CHANNELS)))


def encoder(architecture: str) -> SeriesFeatureEncoder:
    options = {"cnn": {"hidden": [8, 8], "kernel": 3}, "transformer": {"d_model": 16, "n_heads": 2, "n_layers": 1}}
    torch.manual_seed(0)
    return SeriesFeatureEncoder(architecture=architecture, steps=STEPS, channels=list(CHANNELS),
                                options={**options[architecture], "out_dim": 12}).eval()


@pytest.mark.parametrize("architecture", ["cnn", "transformer"])
def test_missing_hours_never_reach_the_features(architecture):
    model = encoder(architecture)
    rng = np.random.default_rng(0)
    series = rng.poisson(20, size=(3, STEPS, len(CHANNELS))).astype(np.float32)
    series[0, 10:20] = np.nan  # a gap
    series[1] = np.nan  # no hour observed at all
    transform, collate = model.inputs(train=False, meta={})
    batch = collate([transform({"id": str(i), "series": s}) for i, s in enumerate(series)] +
                    [transform({"id": "none", "series": None})])
    assert batch["series"].shape == (4, STEPS, len(CHANNELS)) and batch["temporal_present"].tolist() == [
        True, False, True, False]
    with torch.no_grad():
        base = model.features(batch)
        changed = {**batch, "series": batch["series"].clone()}
        changed["series"][0, 10:20] = 1e4  # values under missing hours
        changed["series"][1] = 7.0
        changed["series"][3] = 3.0
        other = model.features(changed)
    assert base.shape == (4, 12)
    assert torch.allclose(base, other, atol=1e-6)
    assert torch.allclose(base[1], base[3], atol=1e-6)  # all missing = no series: only the mask tells
    assert not torch.allclose(base[0], base[2])


def test_a_series_of_the_wrong_shape_is_refused():
    with pytest.raises(PipelineError, match=r"sample m1: the series has shape \(24, 5\)"):
        series_arrays(np.zeros((24, 5), np.float32), STEPS, 5, "sample m1")
    counts, observed = series_arrays(None, STEPS, 5, "x")
    assert counts.shape == (STEPS, 5) and not observed.any()


def test_the_temporal_expert_stage_trains_and_caches_embeddings(stages, tmp_path):
    from sklearn.metrics import roc_auc_score

    from core.files import read_json
    from Step_3.reader import ShardReader
    from Step_4.features.tensors import load_embeddings

    write_params(tmp_path, {"temporal_expert": {"train": {"epochs": 2, "batch_size": 8, "seeds": [0, 1]}}})
    stages.shards()
    stages("Step_4.train_expert", "temporal", "--shards", "shards", "--model", "models/temporal_expert",
           "--embeddings", "emb/temporal", "--metrics-dir", "metrics", "--reports-dir", "reports")
    reader = ShardReader(tmp_path / "shards")
    train = load_embeddings(tmp_path / "emb" / "temporal" / "train.safetensors")
    has_series = {s["id"]: s["series"] is not None for s in reader.samples("train", decode_images=False)}
    assert train["present"].tolist() == [has_series[i] for i in train["ids"]]
    # the metric is the two seeds' mean and sample std; the first seed's is sklearn's on its cached val logits
    metrics = read_json(tmp_path / "metrics" / "temporal_expert.json")
    aurocs = [read_json(tmp_path / "reports" / "temporal_expert.json")["per_seed"][s]["val"]["auroc"] for s in "01"]
    assert metrics["val"]["auroc"] == pytest.approx(np.mean(aurocs), abs=1e-4)
    assert metrics["val"]["auroc_std"] == pytest.approx(np.std(aurocs, ddof=1), abs=1e-4)
    val, positive = load_embeddings(tmp_path / "emb" / "temporal" / "val.safetensors"), reader.meta["positive_index"]
    keep = val["labels"] >= 0
    scores = torch.softmax(val["logits"], -1)[keep, positive].numpy()
    assert aurocs[0] == pytest.approx(roc_auc_score((val["labels"][keep] == positive).numpy(), scores), abs=1e-4)
    saved = read_json(tmp_path / "models" / "temporal_expert" / "expert.json")
    assert saved["modality"] == "temporal" and saved["encoder"]["architecture"] == "cnn"
    assert saved["encoder"]["scale"] != [1.0] * len(CHANNELS)  # scaled with the train split's hours


def test_the_temporal_expert_is_retrained_on_each_folds_training_rows_only(stages, tmp_path, monkeypatch):
    import Step_4.temporal.plugin as temporal_encoder
    from core.params import section
    from Step_3.reader import ShardReader
    from Step_4.context import ExpertContext
    from Step_4.temporal.config import TemporalExpertConfig
    from Step_5.config import CrossvalConfig
    from Step_5.studies import crossval
    from Step_5.studies.folds import fold_roles

    write_params(tmp_path, {"temporal_expert": {"train": {"epochs": 2, "batch_size": 8, "seeds": [0]}}})
    stages.shards()
    reader = ShardReader(tmp_path / "shards")
    ids = [i for split in ("train", "val") for i in sorted(
        s["id"] for s in reader.samples(split, decode_images=False) if s["meta"]["label"] >= 0)]
    trainer = temporal_encoder.fold_trainer(
        section(TemporalExpertConfig, "temporal_expert", str(tmp_path / "params.yaml")),
        ExpertContext(reader=reader, device="cpu"))
    refit = crossval.PerFold("temporal", trainer, CrossvalConfig(folds=3), {"id": ids}, {}, "cpu")
    real, seen = temporal_encoder.fit_one, {}

    def spy(cfg, t, meta, splits, device, live, desc="temporal"):
        seen.update(train=list(splits["train"]["id"]), stop=list(splits["val"]["id"]))
        found = real(cfg, t, meta, splits, device, live, desc)
        seen["expert"] = found[0]
        return found

    monkeypatch.setattr(temporal_encoder, "fit_one", spy)
    roles = fold_roles(np.arange(len(ids)) % 3, 1, 3)
    pooled, _ = refit(roles, seed=0)
    assert seen["train"] == [ids[i] for i in roles["train"]] and seen["stop"] == [ids[i] for i in roles["stop"]]
    assert not set(seen["train"]) & {ids[i] for i in roles["held_out"]}
    expert = seen["expert"].eval()
    with torch.no_grad():
        for j in (0, len(ids) - 1):
            one = {k: v[j:j + 1] for k, v in refit.pool.items() if torch.is_tensor(v)}
            assert torch.allclose(pooled["temporal"][j], expert.forward_features(one)[0], atol=1e-5)
