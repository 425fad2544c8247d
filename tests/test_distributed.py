"""Two CPU processes (torchrun, gloo) train the same expert and fusion head as one process: each rank trains on its rows of
every batch, gradients are averaged, validation predictions are gathered, and only rank 0 writes."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from tools.smoke import deep_merge

ROOT = Path(__file__).resolve().parents[1]


def torchrun() -> str:
    return shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"


TOLERANCE = 0.01  # largest difference allowed in any test_seen probability and in any AUROC (measured: 0.0023;
#                   ranks training apart, without averaged gradients, differ by 0.033)


def test_two_processes_train_what_one_process_trains(stages, tmp_path):
    from Step_4.features.tensors import load_embeddings

    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), {
        "shard": {"maxcount": 8},
        "tabular_model": {"attention_dropout": 0.0, "ffn_dropout": 0.0},
        "tabular_expert": {"pretrained": False, "dropout": 0.0, "device": "cpu",
                           "train": {"epochs": 4, "seeds": [0], "batch_size": 16, "patience": 4}},
        "text_expert": {"max_length": 16, "device": "cpu", "train": {"epochs": 1, "seeds": [0]}},
        "fusion": {"modalities": ["text", "tabular"], "device": "cpu", "modality_dropout": 0.0,
                   "concat": {"dropout": 0.0},  # no dropout: the ranks' masks cannot match one process's
                   "train": {"epochs": 3, "seeds": [0], "batch_size": 16}},
    })
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run, two_ranks = stages, [torchrun(), "--standalone", "--nproc_per_node", "2"]
    stages.shards()
    expert = ["Step_4.train_expert", "tabular", "--shards", "shards"]
    run(*expert, "--model", "one/models/tabular_expert", "--embeddings", "one/emb/tabular",
        "--metrics-dir", "one/metrics", "--reports-dir", "one/reports")
    out = run(*expert, "--model", "two/models/tabular_expert", "--embeddings", "two/emb/tabular", "--metrics-dir",
              "two/metrics", "--reports-dir", "two/reports", launcher=two_ranks)
    assert out.count("tabular_expert:") == 1  # rank 0 alone reports and writes

    one, two = (load_embeddings(tmp_path / n / "emb" / "tabular" / "test_seen.safetensors") for n in ("one", "two"))
    assert one["ids"] == two["ids"]
    gap = (torch.softmax(one["logits"], -1) - torch.softmax(two["logits"], -1)).abs().max().item()
    assert gap <= TOLERANCE, f"probabilities differ by {gap}"
    metrics = [json.loads((tmp_path / n / "metrics" / "tabular_expert.json").read_text()) for n in ("one", "two")]
    for split in ("val", "test_seen"):
        assert abs(metrics[0][split]["auroc"] - metrics[1][split]["auroc"]) <= TOLERANCE

    run("Step_4.train_expert", "text", "--shards", "shards", "--model", "one/models/text_expert",
        "--embeddings", "one/emb/text", "--metrics-dir", "one/metrics", "--reports-dir", "one/reports")
    fusion = ["Step_5.train_fusion", "concat", "--shards", "shards", "--experts", "one/models", "--embeddings", "one/emb"]
    run(*fusion, "--model", "one/fusion", "--metrics-dir", "one/metrics", "--reports-dir", "one/reports")
    out = run(*fusion, "--model", "two/fusion", "--metrics-dir", "two/metrics", "--reports-dir", "two/reports",
              launcher=two_ranks)
    assert out.count("fusion_concat:") == 1
    fused = [json.loads((tmp_path / n / "metrics" / "fusion_concat.json").read_text()) for n in ("one", "two")]
    for split in ("val", "test_seen"):
        assert abs(fused[0][split]["auroc"] - fused[1][split]["auroc"]) <= TOLERANCE


def test_two_processes_split_the_feature_extraction_and_stream_shards_per_rank(stages, tmp_path):
    """Frozen features: each rank encodes its share and the shares merge to the one-process features.
    Fine-tuning: each rank streams its own shards (resampled) and the run completes with rank 0 writing."""
    from sklearn.metrics import roc_auc_score

    from Step_4.features.tensors import load_embeddings

    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), {
        "shard": {"maxcount": 8},
        # fp32: bf16 features (precision auto on a CPU with bf16 instructions) depend on how the ranks batch
        # the texts at about 1e-3, beyond this comparison's tolerance
        "text_expert": {"max_length": 16, "device": "cpu", "embed_batch_size": 8, "precision": "fp32",
                        "train": {"epochs": 1, "seeds": [0], "batch_size": 8}},
    })
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    tuned = deep_merge(params, {"text_expert": {"mode": "finetune", "trainable_layers": 1}})
    (tmp_path / "finetune.yaml").write_text(yaml.safe_dump(tuned))
    run, two_ranks = stages, [torchrun(), "--standalone", "--nproc_per_node", "2"]
    stages.shards()
    text = ["Step_4.train_expert", "text", "--shards", "shards"]
    for name, launcher in (("one", None), ("two", two_ranks)):
        run(*text, "--model", f"{name}/model", "--embeddings", f"{name}/emb", "--metrics-dir", f"{name}/metrics",
            "--reports-dir", f"{name}/reports", launcher=launcher)
    for split in ("train", "test_seen"):
        one, two = (load_embeddings(tmp_path / n / "emb" / f"{split}.safetensors") for n in ("one", "two"))
        assert one["ids"] == two["ids"] and len(one["ids"]) > 0
        torch.testing.assert_close(one["features"], two["features"], atol=1e-4, rtol=1e-4)
    out = run(*text, "--model", "tuned/model", "--embeddings", "tuned/emb", "--metrics-dir", "tuned/metrics",
              "--reports-dir", "tuned/reports", params="finetune.yaml", launcher=two_ranks)
    assert out.count("text_expert:") == 1
    # rank 0 gathered every rank's test_seen rows from the tuned encoder and scored exactly those (one seed)
    tuned_emb, frozen = (load_embeddings(tmp_path / n / "test_seen.safetensors") for n in ("tuned/emb", "one/emb"))
    assert tuned_emb["ids"] == frozen["ids"] and not torch.equal(tuned_emb["features"], frozen["features"])
    positive, keep = json.loads((tmp_path / "shards/meta.json").read_text())["positive_index"], tuned_emb["labels"] >= 0
    scores = torch.softmax(tuned_emb["logits"], -1)[keep, positive].numpy()
    expected = roc_auc_score((tuned_emb["labels"][keep] == positive).numpy(), scores)
    auroc = json.loads((tmp_path / "tuned/metrics/text_expert.json").read_text())["test_seen"]["auroc"]
    assert abs(auroc - expected) <= 1e-4


def test_a_rank_encodes_only_its_share(stages, tmp_path, monkeypatch):
    from core import distributed
    from Step_3.reader import ShardReader
    from Step_4.context import ExpertContext
    from Step_4.features.passes import extract_split, owner
    from Step_4.registry import create_expert
    from Step_4.text.config import TextExpertConfig

    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    stages.shards()
    reader = ShardReader(tmp_path / "shards")
    cfg = TextExpertConfig(max_length=16, embed_batch_size=8).for_device("cpu")
    expert = create_expert("text", cfg, reader.meta)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "gather", lambda obj: [obj])  # this rank's part only
    ctx = ExpertContext(reader=reader, device="cpu")
    ids = sorted(raw["__key__"] for raw in reader.samples("train", raw=True))
    mine = extract_split(expert, cfg, ctx, "train")["ids"]
    assert mine == [i for i in ids if owner(i, 2) == 1] and 0 < len(mine) < len(ids)


def test_a_failed_write_on_rank_0_ends_every_process(stages, tmp_path):
    """Rank 0 cannot write its model (a file stands where its folder goes): the run fails at once, no rank waits."""
    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), {
        "shard": {"maxcount": 8},
        "tabular_expert": {"pretrained": False, "device": "cpu", "train": {"epochs": 1, "seeds": [0]}},
    })
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stages.shards()
    (tmp_path / "blocker").write_text("a file, not a folder")
    out = subprocess.run([torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "Step_4.train_expert", "tabular",
                          "--shards", "shards", "--model", "blocker/model", "--embeddings", "emb", "--params",
                          "params.yaml"], cwd=tmp_path, env=stages.env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "rank 0 failed while writing" in out.stdout + out.stderr  # rank 1 was told and stopped too


def test_ranks_sharing_a_gpu_talk_over_gloo():
    from core.distributed import backend_for

    assert backend_for(local_ranks=4, gpus=4) == "nccl"  # one GPU per rank
    assert backend_for(local_ranks=1, gpus=8) == "nccl"
    assert backend_for(local_ranks=2, gpus=1) == "gloo"  # NCCL refuses two ranks on one device
