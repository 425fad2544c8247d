"""Adding a modality takes one folder (config.py + plugin.py), one registration and one params section: the registry
builds it from its section, and cross-validation retrains it inside every fold through its plugin's fold_trainer,
next to the fusion heads that read it (docs/architecture.md: Adding a modality)."""
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from core.params import section
from Step_4 import registry
from Step_4.config import TrainConfig
from Step_5.config import CrossvalConfig, FusionConfig
from Step_5.studies import crossval
from Step_5.studies.folds import grouped_folds

CONFIG = '''
from dataclasses import dataclass, field

from Step_4.config import TrainConfig


@dataclass
class ToyExpertConfig:
    width: int = 4
    head_hidden: int = 8
    dropout: float = 0.0
    train: TrainConfig = field(default_factory=TrainConfig)
'''

PLUGIN = '''
import torch
from torch import nn

from Step_4.context import FoldTrainer
from Step_4.expert import make_expert

FITTED = []  # the rows each fold trained on


class ToyEncoder(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.width, self.out_dim = width, width
        self.proj = nn.Linear(1, width)

    def features(self, batch):
        return self.proj(batch["signal"][:, None])

    def to_config(self):
        return {"width": self.width}


def build(cfg, meta):
    return ToyEncoder(cfg.width)


def rebuild(config, folder):
    return ToyEncoder(config["width"])


def rows(ids):
    """The toy modality's raw input of each meme: a signal that says its label (ids 'm<i>', label i % 2)."""
    label = torch.tensor([int(i[1:]) % 2 for i in ids])
    return {"id": list(ids), "signal": label * 2.0 - 1.0, "label": label, "true_label": label,
            "toy_present": torch.ones(len(ids), dtype=torch.bool)}


def fold_trainer(cfg, ctx):
    def fit(splits, seed):
        FITTED.append(list(splits["train"]["id"]))
        return make_expert("toy", build(cfg, ctx.meta), cfg, ctx.meta).eval()

    return FoldTrainer(load=lambda split: rows(ctx.meta["ids"][split]), fit=fit)


def features_learn_labels(cfg):
    return True
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy modality's folder on the path and its one registration."""
    folder = tmp_path / "code" / "toy_modality"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "config.py").write_text(textwrap.dedent(CONFIG))
    (folder / "plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    monkeypatch.setitem(registry.EXPERTS, "toy", registry.ExpertKind(
        "toy", "toy_modality.plugin", "toy_modality.config:ToyExpertConfig"))
    yield
    for name in [m for m in sys.modules if m.startswith("toy_modality")]:
        del sys.modules[name]


def test_the_registry_builds_the_new_modality_from_its_params_section(toy, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("toy_expert: {width: 3, head_hidden: 5}\n")
    kind = registry.expert_kind("toy")
    cfg = section(kind.config, kind.section, str(params))
    expert = registry.create_expert("toy", cfg, {"classes": ["benign", "abuse_hate"]})
    assert "toy" in registry.modalities() and expert.out_dim == 3
    assert expert(batch={"signal": torch.ones(2)}).shape == (2, 2)


def test_cross_validation_retrains_the_new_modality_inside_every_fold(toy, tmp_path):
    n, k = 120, 3
    ids = [f"m{i}" for i in range(n)]
    label = torch.arange(n) % 2
    gen = torch.Generator().manual_seed(0)
    pooled = {"id": ids, "label": label, "true_label": label, "mask": torch.ones(n, 2, dtype=torch.bool),
              "text": torch.randn(n, 6, generator=gen), "text_logits": torch.zeros(n, 2), "toy_logits": torch.zeros(n, 2),
              "toy": torch.zeros(n, 3)}  # the cached toy features are replaced by each fold's expert
    params = tmp_path / "params.yaml"
    train = "train: {epochs: 8, batch_size: 32, lr: 0.02}"
    params.write_text(f"toy_expert: {{width: 3, head_hidden: 8, {train}}}\n"
                      f"text_expert: {{head_hidden: 8, dropout: 0.0, {train}}}\n")
    cfg = CrossvalConfig(folds=k, splits=["train"], modalities=["text", "toy"], models=["toy", "concat"])
    fusion = FusionConfig(modalities=["text", "toy"], concat={"hidden": 8}, train=TrainConfig(epochs=8, lr=0.02))
    meta = {"classes": ["benign", "abuse_hate"], "positive_index": 1, "ids": {"train": ids}}
    reader = type("Reader", (), {"meta": meta})()
    refits = crossval.fold_refits(reader, cfg, pooled, {}, crossval.fold_plugins(cfg, str(params)), None, "cpu")
    assert [r.modality for r in refits] == ["toy"]
    folds = grouped_folds([f"g{i % 12}" for i in range(n)], k, seed=0)
    tensors = {key: value for key, value in pooled.items() if torch.is_tensor(value)}
    results = crossval.cross_validate(tensors, {}, folds, cfg, fusion, meta, str(params), "cpu", refits)
    plugin = sys.modules["toy_modality.plugin"]
    assert len(plugin.FITTED) == k  # one toy expert per fold ...
    for fold, trained in enumerate(plugin.FITTED):  # ... that never saw its held-out rows
        assert not set(trained) & {ids[i] for i in np.flatnonzero(folds == fold)}
    assert {name: len(per_fold) for name, per_fold in results.items()} == {"toy": k, "concat": k}
    assert np.mean([f["held_out"]["auroc"] for f in results["toy"]]) > 0.9  # the toy signal says the label


def test_a_new_modality_whose_features_learn_labels_needs_a_fold_trainer(toy, tmp_path):
    plugin = registry.expert_kind("toy").load()
    delattr(plugin, "fold_trainer")
    (tmp_path / "params.yaml").write_text("toy_expert: {}\ntext_expert: {}\n")
    cfg = CrossvalConfig(folds=3, splits=["train"], modalities=["text", "toy"], models=["concat"])
    with pytest.raises(Exception, match=r"\['toy'\] were learned from the train split's labels"):
        crossval.fold_plugins(cfg, str(tmp_path / "params.yaml"))


def test_the_worked_example_in_the_docs_names_the_same_steps():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    for step in ("Step_4/<name>/", "config.py", "plugin.py", "register_expert", "fold_trainer"):
        assert step in doc, step
