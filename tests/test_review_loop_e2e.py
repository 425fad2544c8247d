"""Reviews back into the pipeline, on a copy of a tiny DAG build: reviewed memes exported as a `reviews` source
are read by prepare and everything downstream retrains; a second export without new reviews changes no byte
and `dvc repro` reruns nothing."""
import shutil

import numpy as np
import pytest
import yaml

from core.files import read_jsonl
from Step_7.export import export
from Step_7.store import LabelStore
from tools.smoke import dvc

pytestmark = pytest.mark.e2e


def meme_png(top: str, bottom: str, seed: int) -> bytes:
    import io

    from Step_1.synthetic.render import draw_caption
    from Step_1.synthetic.scenes import make_background

    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    draw_caption(make_background("landscape", 320, rng), top, bottom, rng).save(buffer, format="PNG")
    return buffer.getvalue()


REVIEWED = [("THOSE PEOPLE", "ARE A PLAGUE", "hateful"), ("SEND THEM ALL", "BACK WHERE THEY CAME", "hateful"),
            ("THEY ARE NOT", "EVEN HUMAN", "hateful"), ("MONDAY MORNING", "COFFEE FIRST", "benign"),
            ("MY CAT WHEN", "THE BOX ARRIVES", "benign"), ("WEEKEND PLANS", "SLEEP", "benign")]


def test_exported_reviews_retrain_the_pipeline_and_a_second_export_reruns_nothing(tiny_dag_builds, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(tiny_dag_builds["second"].path, project, symlinks=True)
    store = LabelStore(f"sqlite:///{tmp_path}/labels.db")
    for i, (top, bottom, action) in enumerate(REVIEWED):
        item, _ = store.add_item(image=meme_png(top, bottom, i), media_type="image/png", source="traffic",
                                 text=f"{top} {bottom}", scored={"probability": 0.5, "threshold": 0.5})
        store.review(item, reviewer="ann", role="reviewer", action=action)
    out = project / "data/raw/reviews"
    assert export(store, out)["items"] == 6

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["prepare"]["sources"].append({"name": "reviews", "kind": "reviews", "path": "data/raw/reviews"})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    threads = tiny_dag_builds["second"].threads
    built = dvc(project, "repro", threads=threads)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    for stage in ("prepare", "shard", "text_expert", "fusion@late", "evaluate"):
        assert f"Running stage '{stage}'" in built.stdout, stage
    records = [r for r in read_jsonl(project / "data/prepared/records.jsonl") if r["source"] == "reviews"]
    labels = {r["text"]: r["label"] for r in records}
    assert len(records) == 6 and labels["THOSE PEOPLE ARE A PLAGUE"] == "abuse_hate"
    assert labels["WEEKEND PLANS SLEEP"] == "benign"

    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = export(store, out)
    assert again["written"] == 0 and again["removed"] == 0
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    rerun = dvc(project, "repro", threads=threads)
    assert rerun.returncode == 0 and "Running stage" not in rerun.stdout, rerun.stdout[-2000:]
