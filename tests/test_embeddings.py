import hashlib
import subprocess
import sys
from pathlib import Path

import torch

from Step_4.features.tensors import load_embeddings

ROOT = Path(__file__).resolve().parents[1]
WRITE = """
import sys, torch
from pathlib import Path
from Step_4.features.tensors import save_embeddings
data = {"ids": ["m-1", "m-2", "m-3"], "features": torch.arange(12.).reshape(3, 4), "logits": torch.zeros(3, 2),
        "labels": torch.tensor([0, 1, -1]), "true_labels": torch.tensor([0, 0, 1]), "present": torch.tensor([True, False, True])}
save_embeddings(Path(sys.argv[1]), data, "text")
"""


def test_embedding_files_are_byte_identical_across_processes(tmp_path):
    digests = set()
    for i in range(2):  # separate processes: hash-map order in the file header must not leak into the bytes
        subprocess.run([sys.executable, "-c", WRITE, str(tmp_path / f"{i}.safetensors")], check=True, cwd=ROOT)
        digests.add(hashlib.sha256((tmp_path / f"{i}.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1
    data = load_embeddings(tmp_path / "0.safetensors")
    assert data["ids"] == ["m-1", "m-2", "m-3"] and data["present"].dtype == torch.bool and data["present"].tolist() == [True, False, True]
    torch.testing.assert_close(data["features"], torch.arange(12.).reshape(3, 4))


def test_fusion_refuses_embeddings_that_do_not_match_the_shards(tmp_path):
    import pytest

    from core.errors import PipelineError
    from Step_4.features.tensors import save_embeddings
    from Step_5.data import load_fusion_split

    for m in ("text", "vision"):
        save_embeddings(tmp_path / m / "val.safetensors", {
            "ids": ["a", "b"], "features": torch.zeros(2, 3), "logits": torch.zeros(2, 2),
            "labels": torch.tensor([0, 1]), "true_labels": torch.tensor([0, 1]), "present": torch.ones(2)}, m)
    data = load_fusion_split(tmp_path, "val", ["text", "vision"], shard_ids=["a", "b"], n_classes=2)
    assert data["id"] == ["a", "b"] and data["mask"].shape == (2, 2)
    with pytest.raises(PipelineError, match=r"'text' embeddings hold 2 samples \(0 not in the shards\), the shards 3"):
        load_fusion_split(tmp_path, "val", ["text", "vision"], shard_ids=["a", "b", "c"], n_classes=2)
    with pytest.raises(PipelineError, match="predicts 2 classes, the shards' taxonomy has 3"):
        load_fusion_split(tmp_path, "val", ["text", "vision"], shard_ids=["a", "b"], n_classes=3)
