"""Two CPU processes (torchrun, gloo) train the same expert and fusion head as one process: each rank trains on its rows of
every batch, gradients are averaged, validation predictions are gathered, and only rank 0 writes."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from tools.smoke import deep_merge

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.01  # largest difference allowed in any test_seen probability and in any AUROC (measured: 0.0023;
#                   ranks training apart, without averaged gradients, differ by 0.033)


def test_two_processes_train_what_one_process_trains(tiny_pipeline, tmp_path):
    from Step_4.embeddings import load_embeddings

    t = tiny_pipeline["root"]
    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), {
        "shard": {"maxcount": 8},
        "tabular_model": {"attention_dropout": 0.0, "ffn_dropout": 0.0},
        "tabular_expert": {"pretrained": False, "dropout": 0.0, "device": "cpu",
                           "train": {"epochs": 4, "seeds": [0], "batch_size": 16, "patience": 4}},
        "text_expert": {"max_length": 16, "device": "cpu", "train": {"epochs": 1, "seeds": [0]}},
        "fusion": {"modalities": ["text", "tabular"], "device": "cpu", "modality_dropout": 0.0,
                   "train": {"epochs": 3, "seeds": [0], "batch_size": 16}},
    })
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def run(*args):
        out = subprocess.run([*args, "--params", "params.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, f"{args}: {out.stdout[-2000:]}{out.stderr[-3000:]}"
        return out.stdout

    run(sys.executable, "-m", "Step_3.shard", "--manifest", str(t / "manifest.jsonl"), "--ocr", str(t / "ocr.jsonl"),
        "--schema", str(t / "prepared" / "schema.json"), "--out", "shards")
    expert = ["-m", "Step_4.train_expert", "tabular", "--shards", "shards"]
    run(sys.executable, *expert, "--model", "one/models/tabular_expert", "--embeddings", "one/emb/tabular",
        "--metrics-dir", "one/metrics", "--reports-dir", "one/reports")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    out = run(torchrun, "--standalone", "--nproc_per_node", "2", *expert, "--model", "two/models/tabular_expert",
              "--embeddings", "two/emb/tabular", "--metrics-dir", "two/metrics", "--reports-dir", "two/reports")
    assert out.count("tabular_expert:") == 1  # rank 0 alone reports and writes

    one, two = (load_embeddings(tmp_path / n / "emb" / "tabular" / "test_seen.safetensors") for n in ("one", "two"))
    assert one["ids"] == two["ids"]
    gap = (torch.softmax(one["logits"], -1) - torch.softmax(two["logits"], -1)).abs().max().item()
    assert gap <= TOLERANCE, f"probabilities differ by {gap}"
    metrics = [json.loads((tmp_path / n / "metrics" / "tabular_expert.json").read_text()) for n in ("one", "two")]
    for split in ("val", "test_seen"):
        assert abs(metrics[0][split]["auroc"] - metrics[1][split]["auroc"]) <= TOLERANCE

    run(sys.executable, "-m", "Step_4.train_expert", "text", "--shards", "shards", "--model", "one/models/text_expert",
        "--embeddings", "one/emb/text", "--metrics-dir", "one/metrics", "--reports-dir", "one/reports")
    fusion = ["-m", "Step_5.train_fusion", "concat", "--shards", "shards", "--experts", "one/models", "--embeddings",
              "one/emb"]
    run(sys.executable, *fusion, "--model", "one/fusion", "--metrics-dir", "one/metrics", "--reports-dir", "one/reports")
    out = run(torchrun, "--standalone", "--nproc_per_node", "2", *fusion, "--model", "two/fusion", "--metrics-dir",
              "two/metrics", "--reports-dir", "two/reports")
    assert out.count("fusion_concat:") == 1
    fused = [json.loads((tmp_path / n / "metrics" / "fusion_concat.json").read_text()) for n in ("one", "two")]
    for split in ("val", "test_seen"):
        assert abs(fused[0][split]["auroc"] - fused[1][split]["auroc"]) <= TOLERANCE
