"""Grouped cross-validation: whole groups per fold, a fold never trains on its held-out groups, and every
expert head and fusion method is trained and scored once per fold."""
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import PipelineError
from Step_4.config import TrainConfig
from Step_5.config import CrossvalConfig, FusionConfig
from Step_5.studies import crossval
from Step_5.studies.folds import fold_roles, group_of, grouped_folds, summarize_folds

META = {"classes": ["benign", "abuse_hate"], "positive_index": 1,
        "counts": {"train": {"benign": 120, "abuse_hate": 120}}}


def test_folds_keep_groups_whole_and_balanced():
    groups = [f"g{i % 12}" for i in range(240)] + [None] * 10
    folds = grouped_folds(groups, 4, seed=0)
    for g in set(groups) - {None}:
        assert len({folds[i] for i, x in enumerate(groups) if x == g}) == 1
    sizes = np.bincount(folds, minlength=4)
    assert sizes.max() - sizes.min() <= 20  # whole groups of 20: as even as they allow
    assert (grouped_folds(groups, 4, seed=0) == folds).all()  # deterministic
    with pytest.raises(PipelineError, match="only 3 groups"):
        grouped_folds(["a", "b", "c", "a"], 4, seed=0)
    assert len(set(grouped_folds(["a", "b", "c", "a"], 3, seed=0))) == 3  # k = groups: leave-one-group-out


def test_group_column_paths():
    sample = {"source": "csv", "meta": {"frame": "mocking.zoo"}, "tabular": {"platform": "forum"}, "group": None}
    assert group_of(sample, "meta.frame") == "mocking.zoo"
    assert group_of(sample, "tabular.platform") == "forum"
    assert group_of(sample, "source") == "csv"
    assert group_of(sample, "group") is None and group_of(sample, "meta.missing") is None


def synthetic(n: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    label = torch.arange(n) % 2
    text = torch.randn(n, 8, generator=gen)
    text[:, 0] += label * 3.0  # the informative modality (one feature: a per-modality LayerNorm keeps it)
    vision = torch.randn(n, 6, generator=gen)
    return {"label": label, "true_label": label, "mask": torch.ones(n, 2, dtype=torch.bool), "text": text,
            "vision": vision, "text_logits": torch.zeros(n, 2), "vision_logits": torch.zeros(n, 2),
            "row": torch.arange(n)}


def test_every_fold_trains_without_its_held_out_groups(monkeypatch, tmp_path):
    n, k = 240, 4
    pooled = synthetic(n, 0)
    groups = [f"g{i % 16}" for i in range(n)]
    folds = grouped_folds(groups, k, seed=1)
    params = tmp_path / "params.yaml"
    params.write_text("text_expert: {head_hidden: 16, dropout: 0.0, train: {epochs: 15, batch_size: 32, lr: 0.01}}\n"
                      "vision_expert: {head_hidden: 16, dropout: 0.0, train: {epochs: 15, batch_size: 32, lr: 0.01}}\n")
    fusion = FusionConfig(modalities=["text", "vision"], concat={"hidden": 16},
                          train=TrainConfig(epochs=15, batch_size=32, lr=0.01))
    cfg = CrossvalConfig(folds=k, modalities=["text", "vision"], models=["text", "vision", "concat"])
    real, seen = crossval.train_and_score, []

    def spy(model, t, parts, scored, meta, device, *dropouts):
        trained = {groups[i] for i in parts["train"]["row"].tolist()}
        held = {groups[i] for i in scored["held_out"]["row"].tolist()}
        stop = {groups[i] for i in parts["stop"]["row"].tolist()}
        assert not trained & held and not trained & stop and not held & stop
        seen.append(len(parts["train"]["row"]) + len(parts["stop"]["row"]) + len(scored["held_out"]["row"]))
        return real(model, t, parts, scored, meta, device, *dropouts)

    monkeypatch.setattr(crossval, "train_and_score", spy)
    results = crossval.cross_validate(pooled, {"test_seen": synthetic(80, 9)}, folds, cfg, fusion, META,
                                      str(params), "cpu")
    assert seen == [n] * (k * 3)  # every row in exactly one role, for every fold and model
    assert {m: len(v) for m, v in results.items()} == {"text": k, "vision": k, "concat": k}
    summary = summarize_folds(results)
    assert summary["text"]["held_out"]["auroc"] > 0.8 and summary["concat"]["test_seen"]["auroc"] > 0.8
    assert summary["vision"]["held_out"]["auroc"] < 0.7  # noise stays noise
    assert len(results["concat"][0]) == 2  # held_out and test_seen, per fold


def test_roles_partition_the_rows():
    folds = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    roles = fold_roles(folds, 3, 4)
    assert roles["held_out"].tolist() == [6, 7] and roles["stop"].tolist() == [0, 1]
    assert sorted(np.concatenate(list(roles.values())).tolist()) == list(range(8))


def test_bad_settings_are_clear():
    with pytest.raises(Exception, match="folds must be >= 3"):
        CrossvalConfig(folds=2)
    with pytest.raises(Exception, match="never pooled"):
        CrossvalConfig(splits=["train", "test_seen"])
    with pytest.raises(Exception, match="at least two modalities"):
        CrossvalConfig(modalities=["text"], models=["text", "gated"])
    CrossvalConfig(modalities=["text"], models=["text"])  # one expert head alone is fine


def test_the_tabular_expert_is_retrained_on_each_folds_training_rows_only(stages, tmp_path, monkeypatch):
    """Its features learn from labels, so every fold retrains it on that fold's training rows (early stopping on
    the stop fold) and every row gets that fold's features."""
    import yaml

    import Step_4.tabular.plugin as tabular_encoder
    from core.params import section
    from Step_3.reader import ShardReader
    from Step_4.context import ExpertContext
    from Step_4.tabular.config import TabularExpertConfig
    from tools.smoke import deep_merge

    root = Path(__file__).resolve().parents[1]
    params = deep_merge(yaml.safe_load((root / "params.yaml").read_text()), {
        "tabular_expert": {"pretrained": False, "device": "cpu", "train": {"epochs": 2, "batch_size": 8, "seeds": [0]}}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stages.shards()
    reader = ShardReader(tmp_path / "shards")
    ids = [i for split in ("train", "val") for i in sorted(
        s["id"] for s in reader.samples(split, decode_images=False) if s["meta"]["label"] >= 0)]
    cfg = CrossvalConfig(folds=3)
    trainer = tabular_encoder.fold_trainer(section(TabularExpertConfig, "tabular_expert", str(tmp_path / "params.yaml")),
                                           ExpertContext(reader=reader, device="cpu"))
    refit = crossval.PerFold("tabular", trainer, cfg, {"id": ids}, {}, "cpu")
    real, seen = tabular_encoder.fit_one, {}

    def spy(cfg_, t, encoder, splits, ctx, live):
        seen.update(train=list(splits["train"]["id"]), stop=list(splits["val"]["id"]))
        found = real(cfg_, t, encoder, splits, ctx, live)
        seen["expert"] = found[0]
        return found

    monkeypatch.setattr(tabular_encoder, "fit_one", spy)
    folds = np.arange(len(ids)) % 3
    roles = fold_roles(folds, 0, 3)
    pooled, _ = refit(roles, seed=0)
    assert seen["train"] == [ids[i] for i in roles["train"]] and seen["stop"] == [ids[i] for i in roles["stop"]]
    assert not set(seen["train"]) & {ids[i] for i in roles["held_out"]}
    assert pooled["tabular"].shape[0] == len(ids) and torch.isfinite(pooled["tabular"]).all()
    # row j holds the features of meme ids[j] from this fold's expert (not another row's)
    expert = seen["expert"].eval()
    with torch.no_grad():
        for j in (0, len(ids) // 2, len(ids) - 1):
            one = {k: v[j:j + 1] for k, v in refit.pool.items() if torch.is_tensor(v)}
            assert torch.allclose(pooled["tabular"][j], expert.forward_features(one)[0], atol=1e-5)


@pytest.mark.parametrize("section_text", ["text_expert: {mode: finetune}", "text_expert: {adaptive: dact}",
                                          "vision_expert: {mode: finetune}"])
def test_label_trained_features_are_refused_before_any_data_is_read(tmp_path, section_text):
    """Fine-tuned or DACT features learned from the train split's labels; crossval refuses them from params alone."""
    (tmp_path / "params.yaml").write_text(f"text_expert: {{}}\nvision_expert: {{}}\n{section_text}\n".replace(
        "text_expert: {}\n" if section_text.startswith("text") else "vision_expert: {}\n", "", 1))
    cfg = CrossvalConfig(folds=3, modalities=["text", "vision"], models=["text", "vision", "concat"])
    with pytest.raises(PipelineError, match=r"were learned from the train split's labels"):
        crossval.fold_plugins(cfg, str(tmp_path / "params.yaml"))
    (tmp_path / "params.yaml").write_text("text_expert: {}\nvision_expert: {}\n")
    assert set(crossval.fold_plugins(cfg, str(tmp_path / "params.yaml"))) == {"text", "vision"}
