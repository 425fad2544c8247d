"""Shards served over HTTP (a loopback server) or read through a `pipe:` command train the same expert as the
same shards on disk."""
import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
import yaml

from tools.smoke import deep_merge

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def served(tmp_path):
    """(root folder, URL of that folder) from a loopback HTTP server that logs every path it serves."""
    served_paths: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            served_paths.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}", served_paths
    server.shutdown()


def test_an_expert_trains_from_shards_over_http_as_from_disk(stages, served):
    root, url, served_paths = served
    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), {
        "shard": {"maxcount": 8},
        "tabular_expert": {"pretrained": False, "train": {"epochs": 2, "seeds": [0]}},
    })
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    stages.shards()
    for name, shards in (("disk", "shards"), ("http", f"{url}/shards"), ("pipe", f"pipe:cat {root}/shards/{{}}")):
        stages("Step_4.train_expert", "tabular", "--shards", shards, "--model", f"{name}/model", "--embeddings",
            f"{name}/emb", "--metrics-dir", f"{name}/metrics", "--reports-dir", f"{name}/reports")
    meta = json.loads((root / "shards" / "meta.json").read_text())
    tars = [p for p in served_paths if p.endswith(".tar")]
    assert "/shards/meta.json" in served_paths and {p.split("/")[2] for p in tars} == {
        split for split, sizes in meta["shard_sizes"].items() if sizes}  # every split that has shards
    disk, http_run, pipe = ((root / n / "metrics" / "tabular_expert.json").read_text() for n in ("disk", "http", "pipe"))
    assert disk == http_run == pipe  # the same samples in the same order give the same model
