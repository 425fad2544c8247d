import io

import numpy as np
from PIL import Image, ImageEnhance

from Step_1.synthetic.scenes import load_photo
from Step_2.phash import hamming, near_duplicate_pairs, phash
from Step_3.splits import assign_splits, link_groups


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def test_phash_survives_reencoding_and_resizing_but_separates_photos():
    cat = load_photo("chelsea")
    variants = [_jpeg(cat, 40), cat.resize((200, 130)), ImageEnhance.Brightness(cat).enhance(1.15)]
    assert all(hamming(phash(cat), phash(v)) <= 4 for v in variants)
    assert hamming(phash(cat), phash(load_photo("coffee"))) > 16


def test_banded_search_matches_brute_force():
    rng = np.random.default_rng(0)
    base = [int(x) for x in rng.integers(0, 2**63, size=40)]
    hashes = [f"{b:016x}" for b in base]
    for b in base[:10]:  # near copies with 1-5 flipped bits
        flips = rng.choice(64, size=int(rng.integers(1, 6)), replace=False)
        hashes.append(f"{b ^ sum(1 << int(f) for f in flips):016x}")
    for d in (0, 3, 5):
        brute = sorted((i, j) for i in range(len(hashes)) for j in range(i + 1, len(hashes))
                       if hamming(hashes[i], hashes[j]) <= d)
        assert near_duplicate_pairs(hashes, d) == brute


def test_near_duplicates_land_in_one_split():
    rows = [{"id": f"s-{i}", "sha256": f"h{i}", "source": "s", "split": None, "group": None} for i in range(60)]
    links = [(i, i + 30) for i in range(30)]  # row i and i+30 are near-duplicates (different bytes)
    labels = [i % 2 for i in range(60)]
    splits = assign_splits(rows, labels, {"train": 0.6, "val": 0.2, "test_seen": 0.2}, 1, link_groups(rows, links))
    assert all(splits[i] == splits[i + 30] for i in range(30))


def test_group_column_keeps_a_group_together():
    rows = [{"id": f"s-{i}", "sha256": f"h{i}", "source": "s", "split": None, "group": f"user{i % 7}"} for i in range(70)]
    splits = assign_splits(rows, [0] * 70, {"train": 0.6, "val": 0.2, "test_seen": 0.2}, 1, link_groups(rows))
    for g in range(7):
        assert len({s for r, s in zip(rows, splits) if r["group"] == f"user{g}"}) == 1


def test_official_splits_survive_near_duplicate_links_but_not_identical_bytes():
    import pytest

    from core.errors import PipelineError

    rows = [{"id": "hm-1", "sha256": "a", "source": "hm", "split": "val", "group": None},
            {"id": "hm-2", "sha256": "b", "source": "hm", "split": "test_seen", "group": None},
            {"id": "hm-3", "sha256": "c", "source": "hm", "split": None, "group": None}]
    comps = link_groups(rows, [(0, 1), (1, 2)])  # near-duplicates, e.g. a benign confounder of the same photo
    fractions = {"train": 0.8, "val": 0.1, "test_seen": 0.1}
    assert assign_splits(rows, [0, 1, 0], fractions, 0, comps) == ["val", "test_seen", "test_seen"]
    rows[1]["sha256"] = "a"  # now hm-1 and hm-2 are the same bytes in two official splits
    with pytest.raises(PipelineError, match="same image but their official splits differ"):
        assign_splits(rows, [0, 1, 0], {"train": 0.8, "val": 0.1, "test_seen": 0.1}, 0, link_groups(rows))


def test_a_split_without_labelled_examples_of_a_class_is_a_clear_error():
    import pytest

    from core.errors import PipelineError
    from Step_3.splits import check_labelled

    check_labelled([0, 1, 0, 1, 0, 1], ["train", "train", "val", "val", "test_seen", "test_seen"], ["benign", "abuse_hate"])
    with pytest.raises(PipelineError, match=r"split 'val' has 2 rows but no labelled example of \['abuse_hate'\]"):
        check_labelled([0, 1, 0, -1, 0, 1], ["train", "train", "val", "val", "test_seen", "test_seen"], ["benign", "abuse_hate"])
