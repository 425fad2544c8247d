import json

import numpy as np
from PIL import Image

from Step_1.synthetic.render import draw_caption
from Step_1.synthetic.scenes import make_background
from Step_2.cache import OcrCache
from Step_2.ocr import OcrConfig, build_manifest, run_ocr
from Step_2.tesseract import OcrSettings, char_error_rate, isolate_outlined_text, read_text


def test_tesseract_reads_a_rendered_caption_over_a_photo():
    rng = np.random.default_rng(5)
    image = draw_caption(make_background("person", 320, rng), "WHEN THE WIFI", "FINALLY WORKS", rng)
    text, conf = read_text(image, OcrSettings())
    assert char_error_rate(text, "WHEN THE WIFI FINALLY WORKS") < 0.1, text
    assert conf > 50


def test_outlined_text_mask_drops_plain_white_regions():
    image = np.full((120, 120, 3), 255, np.uint8)  # a white wall, no outline
    assert not isolate_outlined_text(image, OcrSettings()).any()


def test_character_error_rate():
    assert char_error_rate("HELLO  world", "hello world") == 0
    assert char_error_rate("HELO", "HELLO") == 0.2


def test_pipeline_ocr_quality_and_cache(tiny_pipeline, tmp_path):
    ocr = tiny_pipeline["ocr"]
    manifest = tiny_pipeline["manifest"]
    chars = sum(len(m["gold_text"]) for m in manifest)
    cer = sum(char_error_rate(o["text"], m["gold_text"]) * len(m["gold_text"]) for o, m in zip(ocr, manifest)) / chars
    assert cer < 0.08
    # A second run over the same images reads nothing new: everything comes from the cache.
    cache_file = tiny_pipeline["root"] / "cache" / "entries.jsonl"
    rows, timing = run_ocr(manifest, OcrConfig(), OcrCache(cache_file))
    assert timing["ocr_new_images"] == 0 and rows == ocr


def test_cache_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "entries.jsonl"
    cache = OcrCache(path)
    cache.add_many([{"key": "a:1", "text": "HI", "confidence": 90.0, "engine": "t"}])
    with open(path, "a") as fh:
        fh.write('{"key": "b:1", "te')  # crash mid-write
    reloaded = OcrCache(path)
    assert reloaded.get("a:1")["text"] == "HI" and reloaded.get("b:1") is None


def test_manifest_rejects_unusable_images_with_reasons(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (32, 32), "red").save(good)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    records = [{"id": f"s-{i}", "image": str(p), "source": "s", "label": None, "text": None, "split": None,
                "group": None, "tabular": {}, "meta": {}} for i, p in enumerate([good, empty, text])]
    manifest, rejected = build_manifest(records, 40_000_000)
    assert [m["id"] for m in manifest] == ["s-0"]
    reasons = {r["image"]: r["reason"] for r in rejected}
    assert "empty" in reasons[str(empty)] and "not an image" in reasons[str(text)]
    json.dumps(rejected)


def test_batched_ocr_equals_one_image_at_a_time():
    """Step 2 reads images in batches, predict reads one: both must give the same text."""
    from Step_2.tesseract import read_texts

    rng = np.random.default_rng(9)
    images = [draw_caption(make_background(c, 320, rng), "NO THOUGHTS", "HEAD EMPTY", rng)
              for c in ("food", "landscape", "object")]
    images.insert(1, Image.new("RGB", (80, 80), "white"))  # a page with no text keeps the order intact
    batched = read_texts(images, OcrSettings())
    assert batched == [read_text(image, OcrSettings()) for image in images]
    assert batched[1] == ("", -1.0) and "HEAD EMPTY" in batched[0][0]


def test_ocr_leaves_the_process_environment_alone(tiny_pipeline, tmp_path, monkeypatch):
    """OMP_THREAD_LIMIT=1 is for tesseract only: leaked into the parent it makes torch's CPU training produce NaN."""
    import os

    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    before = dict(os.environ)
    run_ocr(tiny_pipeline["manifest"][:3], OcrConfig(), OcrCache(tmp_path / "c.jsonl"))
    assert dict(os.environ) == before


def test_ocr_parts_on_separate_machines_merge_into_one_cache(tiny_pipeline, tmp_path):
    """Each 'machine' OCRs its part of the images into a part file; copied beside the cache, the stage's own run
    then reads nothing new and gives the one-machine rows."""
    import shutil

    import pytest

    from core.errors import PipelineError
    from Step_2.ocr import parse_part, run_part, scan

    records = tiny_pipeline["records"][:10]
    cfg = OcrConfig(workers=1)
    parts = []
    for k in (1, 2):  # two machines, each with its own (empty) cache folder
        done = run_part(records, cfg, str(tmp_path / f"machine{k}" / "entries.jsonl"), k, 2)
        parts.append(OcrCache(done["written_to"]).entries)
        assert done["ocr_new_images"] == done["images"]
    assert not set(parts[0]) & set(parts[1])  # disjoint parts
    assert sum(map(len, parts)) == len({m["sha256"] for m in tiny_pipeline["manifest"][:10]})
    main = tmp_path / "main"
    main.mkdir()
    for k in (1, 2):
        shutil.copy(OcrCache.part_file(tmp_path / f"machine{k}" / "entries.jsonl", k, 2), main)
    manifest, _, rows, timing = scan(records, cfg, OcrCache(main / "entries.jsonl"))
    assert timing["ocr_new_images"] == 0
    expected = {r["id"]: r for r in tiny_pipeline["ocr"]}
    assert rows == [expected[m["id"]] for m in manifest]
    with pytest.raises(PipelineError, match="K/N"):
        parse_part("2-of-4")
    with pytest.raises(PipelineError, match="between 1 and N"):
        parse_part("5/4")
