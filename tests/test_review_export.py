"""Step_7.export: reviewed memes from a real label store (SQLite in tmp_path) into a `reviews` source folder,
deterministically, and read back through the `reviews` importer."""
import io
import json
import subprocess
import sys

import pytest
from PIL import Image

from core.errors import PipelineError
from core.params import build
from Step_1.config import SourceConfig
from Step_1.sources import IMPORTERS
from Step_7.export import export, open_store
from Step_7.store import LabelStore


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def store(tmp_path):
    """Three memes: two labelled (one by two reviewers), one still unreviewed."""
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    ids = [store.add_item(image=png((i * 60, 20, 20)), media_type="image/png", source="traffic",
                          text=f"meme {i}", scored={"probability": 0.4 + i / 10}, created=float(i))[0]
           for i in range(3)]
    store.review(ids[0], reviewer="ana", role="reviewer", action="hateful")
    store.review(ids[0], reviewer="ben", role="reviewer", action="hateful")
    store.review(ids[1], reviewer="ana", role="reviewer", action="benign")
    store.ids = ids
    yield store
    store.close()


def snapshot(folder):
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_second_export_changes_no_byte_and_no_mtime(store, tmp_path):
    out = tmp_path / "export"
    assert export(store, out) == {"items": 2, "written": 3, "unchanged": 0, "removed": 0}
    first = snapshot(out)
    rows = [json.loads(line) for line in (out / "reviews.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == sorted(store.ids[:2])
    by_id = {r["id"]: r for r in rows}
    assert by_id[store.ids[0]]["reviewers"] == ["ana", "ben"] and by_id[store.ids[0]]["label"] == "abuse_hate"
    assert list(by_id[store.ids[1]]) == sorted(by_id[store.ids[1]])  # keys sorted
    assert (out / by_id[store.ids[1]]["image"]).read_bytes() == store.image(store.ids[1])[0]
    assert export(store, out) == {"items": 2, "written": 0, "unchanged": 3, "removed": 0}
    assert snapshot(out) == first


def test_a_new_review_writes_only_its_image_and_the_index(store, tmp_path):
    out = tmp_path / "export"
    export(store, out)
    before = snapshot(out)
    store.review(store.ids[2], reviewer="ben", role="reviewer", action="benign")
    assert export(store, out) == {"items": 3, "written": 2, "unchanged": 2, "removed": 0}
    after = snapshot(out)
    assert {k for k in after if before.get(k) != after[k]} == {k for k in after if k.name in (
        "reviews.jsonl", f"{store.ids[2]}.png")}


def test_an_item_no_longer_reviewed_is_removed(store, tmp_path):
    out = tmp_path / "export"
    export(store, out)
    (out / "images" / ".x.png.tmp-crashed").write_bytes(b"partial")
    store.review(store.ids[0], reviewer="ana", role="reviewer", action="escalate")
    assert export(store, out) == {"items": 1, "written": 1, "unchanged": 1, "removed": 1}
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{store.ids[1]}.png"]


def test_the_export_reads_back_as_a_reviews_source_with_the_same_labels(store, tmp_path):
    out = tmp_path / "export"
    export(store, out)
    source = build(SourceConfig, {"name": "reviews", "kind": "reviews", "path": str(out)}, where="test")
    rows, _, rejected = IMPORTERS["reviews"](source, tmp_path / "prepared", 1)
    assert rejected == []
    assert {r["local_id"]: r["label"] for r in rows} == {r["id"]: r["label"] for r in store.reviewed()}
    assert all(open(r["image"], "rb").read() == store.image(r["local_id"])[0] for r in rows)


def test_an_unusable_store_url_says_which(tmp_path):
    with pytest.raises(PipelineError, match="no label store at .*missing.db"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(PipelineError, match="cannot open the label store 'nosuchdb://x'"):
        open_store("nosuchdb://x")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(PipelineError, match=r"'postgresql\+psycopg://ana:\*\*\*@127.0.0.1:1/db'") as err:
        open_store("postgresql+psycopg://ana:secret@127.0.0.1:1/db")  # nothing listens on port 1
    assert "secret" not in str(err.value)


def test_the_cli_exports_and_reports(store, tmp_path, repo_root):
    cmd = [sys.executable, "-m", "Step_7.export", "--db", store.url, "--out", str(tmp_path / "export")]
    out = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "exported 2 reviewed memes" in out.stdout and "3 files written, 0 unchanged, 0 images removed" in out.stdout
    bad = subprocess.run([*cmd[:3], "--db", "sqlite:///nowhere/x.db"], cwd=repo_root, capture_output=True, text=True)
    assert bad.returncode == 2 and "no label store at nowhere/x.db" in bad.stderr
