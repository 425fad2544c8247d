import io

import numpy as np
from PIL import Image

from Step_1.synthetic.captions import GROUPS
from Step_1.synthetic.generate import SyntheticOptions, is_hateful, make_meme


def test_same_seed_same_bytes_other_seed_other_bytes():
    opts = SyntheticOptions(count=3)
    a, b = make_meme(1, opts), make_meme(1, opts)
    assert a[1] == b[1] and a[0] == b[0]
    c = make_meme(1, SyntheticOptions(count=3, seed=99))
    assert c[1] != a[1]


def test_label_rule_has_benign_confounders_on_both_sides():
    assert is_hateful("person", "mocking")
    assert not is_hateful("landscape", "mocking")  # same caption, other image: benign
    assert not is_hateful("person", "neutral")  # same image, other caption: benign
    assert is_hateful("food", "explicit") and is_hateful("symbol", "neutral")


def test_generated_set_needs_both_modalities():
    """Over 300 memes, neither the caption intent nor the image content alone determines the label."""
    opts = SyntheticOptions(count=300)
    rows = [make_meme(i, opts)[0] for i in range(300)]
    by_intent = {}
    by_content = {}
    for r in rows:
        by_intent.setdefault(r["meta"]["intent"], set()).add(r["label"])
        by_content.setdefault(r["meta"]["content"], set()).add(r["label"])
    assert by_intent["mocking"] == {"hateful", "benign"}
    assert by_content["person"] == {"hateful", "benign"}
    assert 0.25 < np.mean([r["label"] == "hateful" for r in rows]) < 0.5


def test_meme_has_caption_metadata_and_missing_values():
    opts = SyntheticOptions(count=200, missing_rate=0.2)
    rows = [make_meme(i, opts) for i in range(60)]
    record, jpeg = rows[0]
    image = Image.open(io.BytesIO(jpeg))
    assert image.size == (opts.image_size, opts.image_size) and image.format == "JPEG"
    assert record["text"] == record["text"].upper() and record["text"]
    assert any(v is None for r, _ in rows for v in r["tabular"].values())
    words = " ".join(r["text"].lower() for r, _ in rows)
    assert any(g in words for g in GROUPS)
