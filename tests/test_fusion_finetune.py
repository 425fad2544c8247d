"""End-to-end fine-tuning of a fusion model from real shards (tiny data, one epoch)."""
from collections import Counter

import numpy as np
import torch

from Step_3.reader import ShardReader
from Step_3.shard import write_shards
from Step_3.splits import SPLITS
from Step_3.tabular import TabularSchema, fit_schema
from Step_4.config import TrainConfig
from Step_4.expert import Expert
from Step_4.tabular.model import FTConfig
from Step_4.tabular.plugin import TabularFeatureEncoder
from Step_4.text.encoder import TextEncoder
from Step_4.vision.encoder import VisionEncoder
from Step_5.config import FinetuneConfig
from Step_5.finetune import EndToEndFusion, finetune
from Step_5.models import ConcatFusion, FusionDims


def test_finetune_trains_top_layers_only(tiny_pipeline, tmp_path):
    t = tiny_pipeline
    write_shards(t["rows"], t["labels"], t["splits"], tmp_path, t["shard_cfg"], 40_000_000)
    train_rows = [r for r, s in zip(t["rows"], t["splits"]) if s == "train"]
    schema = fit_schema(["followers", "prior_reports"], ["platform"], train_rows)
    counts = {s: Counter("abuse_hate" if y else "benign" for y, sp in zip(t["labels"], t["splits"]) if sp == s)
              for s in SPLITS}
    meta = {"classes": ["benign", "abuse_hate"], "positive_index": 1, "text_source": "ocr",
            "counts": {s: dict(c) for s, c in counts.items()}, "sizes": {s: sum(c.values()) for s, c in counts.items()},
            "tabular": schema}
    tab = TabularSchema(schema)
    torch.manual_seed(0)
    experts = {
        "text": Expert(modality="text", encoder=TextEncoder(max_length=16), n_classes=2, head_hidden=8, dropout=0.0),
        "vision": Expert(modality="vision", encoder=VisionEncoder(weights="none"), n_classes=2, head_hidden=8,
                         dropout=0.0),
        "tabular": Expert(modality="tabular", encoder=TabularFeatureEncoder(config=FTConfig(
            n_numeric=tab.n_numeric, cardinalities=tab.cardinalities, d_block=16, n_blocks=1, attention_n_heads=2)),
            n_classes=2, head_hidden=8, dropout=0.0),
    }
    dims = FusionDims(inputs={m: e.out_dim for m, e in experts.items()}, n_classes=2)
    model = EndToEndFusion(experts=experts, head=ConcatFusion(dims=dims, hidden=16), modalities=list(experts))
    frozen_before = experts["text"].encoder.backbone.encoder.layer[0].attention.self.query.weight.clone()
    tuned_before = experts["text"].encoder.backbone.encoder.layer[5].attention.self.query.weight.clone()
    cfg = FinetuneConfig(enabled=True, text_layers=1, vision_blocks=1, epochs=1, batch_size=8, lr=1e-3)
    reader = ShardReader(tmp_path, meta)
    ids = {s: sorted(x["id"] for x in reader.samples(s, decode_images=False)) for s in SPLITS if meta["sizes"][s]}
    result, runs, removal = finetune(model, cfg, TrainConfig(seeds=[0]), reader=reader, ids=ids,
                                     modality_dropout=0.2, device="cpu")
    assert len(result.history) == 1 and np.isfinite(result.history[0]["train_loss"])
    probs = runs[0]["test_seen"]
    assert len(probs) == meta["sizes"]["test_seen"] and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert set(removal) == {"text", "vision", "tabular"} and len(removal["text"]) == len(probs)
    assert torch.equal(experts["text"].encoder.backbone.encoder.layer[0].attention.self.query.weight, frozen_before)
    assert not torch.equal(experts["text"].encoder.backbone.encoder.layer[5].attention.self.query.weight, tuned_before)
