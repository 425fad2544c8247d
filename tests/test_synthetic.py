"""The synthetic generator: determinism, record layout, options, rendering styles and the unfamiliar benign set."""
import io
import re
from collections import defaultdict
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image

from core.errors import PipelineError
from core.params import build
from Step_1.config import SourceConfig
from Step_1.records import SPLITS
from Step_1.sources import import_synthetic
from Step_1.synthetic.captions import FRAMES
from Step_1.synthetic.generate import make_meme, make_record
from Step_1.synthetic.metadata import CATEGORICAL_FIELDS, NUMERIC_FIELDS
from Step_1.synthetic.options import SyntheticOptions
from Step_1.synthetic.scenes import FAMILIES, MEDIA, draw_scene, make_background
from Step_1.synthetic.unfamiliar import BACKGROUNDS, font_path, make_unfamiliar_benign

META_KEYS = {"content", "intent", "frame", "quoted_frame", "group", "image_family", "style", "filter", "medium",
             "unseen", "hostile", "sarcasm", "typos", "hard", "true_label", "votes", "agreement"}


def test_same_seed_same_bytes_other_seed_other_bytes():
    opts = SyntheticOptions(count=3)
    a, b = make_meme(1, opts), make_meme(1, opts)
    assert a[1] == b[1] and a[0] == b[0]
    c = make_meme(1, SyntheticOptions(count=3, seed=99))
    assert c[1] != a[1]


def test_parallel_import_writes_the_same_bytes_as_one_process(tmp_path):
    source = SourceConfig(name="syn", kind="synthetic", label_map={}, options={"count": 6, "image_size": 96})
    one, _, _ = import_synthetic(source, tmp_path / "one", 1)
    two, schema, _ = import_synthetic(source, tmp_path / "two", 2)
    assert schema == {"numeric": list(NUMERIC_FIELDS), "categorical": list(CATEGORICAL_FIELDS)}
    for a, b in zip(one, two):
        assert open(a["image"], "rb").read() == open(b["image"], "rb").read()
        assert (a["series"] is None) == (b["series"] is None)
        if a["series"]:
            assert open(a["series"], "rb").read() == open(b["series"], "rb").read()
        files = ("image", "series")
        assert {k: v for k, v in a.items() if k not in files} == {k: v for k, v in b.items() if k not in files}
        assert a["split"] in (None, "test_unseen") and a["group"] is None


def test_rendering_does_not_move_the_record():
    """The record comes from its own random stream: rendering (image size) changes no variable or label."""
    small, big = SyntheticOptions(image_size=96), SyntheticOptions(image_size=200)
    for i in range(5):
        rows = [make_meme(i, small)[0], make_meme(i, big)[0], make_record(i, small)[0]]
        for row in rows:
            row["meta"].pop("filter")
        assert rows[0] == rows[1] == rows[2]


def test_meme_has_caption_metadata_votes_and_missing_values():
    opts = SyntheticOptions(count=200, missing_rate=0.2, image_size=128)
    rows = [make_meme(i, opts) for i in range(40)]
    record, jpeg = rows[0]
    image = Image.open(io.BytesIO(jpeg))
    assert image.size == (128, 128) and image.format == "JPEG"
    for record, _ in rows:
        assert record["text"] == record["text"].upper() and record["text"]
        assert set(record["tabular"]) == set(NUMERIC_FIELDS) | set(CATEGORICAL_FIELDS)
        assert set(record["meta"]) == META_KEYS
        assert record["label"] in ("hateful", "benign") and record["meta"]["true_label"] in ("hateful", "benign")
        assert record["split"] is None or record["split"] in SPLITS
    assert any(v is None for r, _ in rows for v in r["tabular"].values())


def test_options_come_from_params_and_bad_values_fail():
    opts = build(SyntheticOptions, {"annotator_error_rates": [0.0, 0.1, 0.2], "unseen_share": 0.3}, where="x")
    assert opts.annotator_error_rates == [0.0, 0.1, 0.2] and asdict(opts)["unseen_share"] == 0.3
    for bad in ({"annotator_error_rates": [0.1, 0.1]}, {"annotator_error_rates": [0.1, 0.6, 0.1]},
                {"unseen_fraction": 0.0, "unseen_share": 0.1}, {"hostile_rates": {"hateful": 0.5}},
                {"intent_probs": {"neutral": 1.0}}, {"mocking_people_share": 0.9, "mocking_lookalike_share": 0.2}):
        with pytest.raises(PipelineError):
            build(SyntheticOptions, bad, where="x")


def test_no_rendering_style_predicts_the_label():
    """Drawn pictures are not a hate cue: every style carries both labels at a rate near the overall one."""
    opts = SyntheticOptions()
    rows = [make_record(i, opts)[0] for i in range(3000)]
    overall = np.mean([r["label"] == "hateful" for r in rows])
    by_style = defaultdict(list)
    for r in rows:
        by_style[r["meta"]["style"]].append(r["label"] == "hateful")
    assert set(by_style) == {"photo", "drawn", "screenshot", "text_only"}
    for style, labels in by_style.items():
        assert len(labels) >= 100, style
        assert 0.7 * overall <= np.mean(labels) <= 1.3 * overall, (style, np.mean(labels), overall)
    drawn_hateful = np.mean([r["meta"]["style"] == "drawn" for r in rows if r["label"] == "hateful"])
    drawn_benign = np.mean([r["meta"]["style"] == "drawn" for r in rows if r["label"] == "benign"])
    assert abs(drawn_hateful - drawn_benign) < 0.1


def test_every_family_and_medium_renders():
    rng = np.random.default_rng(0)
    for content, families in FAMILIES.items():
        for family in families:
            for medium in (MEDIA if family.split(":")[0] in ("emblem", "symbol") else (None,)):
                image, info = draw_scene(family, 64, rng, photo_filter_rate=0.5, medium=medium)
                assert image.size == (64, 64) and image.mode == "RGB", family
                assert np.asarray(image).std() > 3, (family, medium)  # not a blank card by mistake
                assert info["medium"] == medium
        assert make_background(content, 48, rng).size == (48, 48)  # by content class: one of its families


def test_unfamiliar_benign_set():
    rows = [make_unfamiliar_benign(i, seed=5, size=160) for i in range(30)]
    assert rows[3] == make_unfamiliar_benign(3, seed=5, size=160)
    assert make_unfamiliar_benign(3, seed=6, size=160)[1] != rows[3][1]
    assert {r["label"] for r, _ in rows} == {"benign"}
    assert {r["meta"]["background"] for r, _ in rows} == set(BACKGROUNDS)
    assert all(r["meta"]["font"] == "Archivo Black" for r, _ in rows) and font_path().endswith(".ttf")
    assert all(set(r["tabular"]) == set(NUMERIC_FIELDS) | set(CATEGORICAL_FIELDS) for r, _ in rows)
    assert Image.open(io.BytesIO(rows[0][1])).size == (160, 160)
    texts = [r["text"].lower() for r, _ in rows]
    literals = [chunk.strip() for frames in FRAMES.values() for f in frames for p in f.patterns
                for chunk in re.split(r"\{\w+\}", p) if len(chunk.split()) >= 3]
    assert literals and not [(c, t) for c in literals for t in texts if c in t]  # wording not from the grammar
