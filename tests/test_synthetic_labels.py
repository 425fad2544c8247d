"""The label rule needs both modalities (and, for borderline memes, the metadata); simulated annotators."""
from collections import Counter, defaultdict

import numpy as np
import pytest

from Step_1.synthetic.generate import make_record
from Step_1.synthetic.labels import annotate, expected_agreement, is_hateful
from Step_1.synthetic.options import SyntheticOptions
from Step_1.synthetic.scenes import CONTENTS


@pytest.fixture(scope="module")
def records() -> list[dict]:
    opts = SyntheticOptions()
    return [make_record(i, opts)[0] for i in range(3000)]


def test_label_rule_has_confounders_on_every_side():
    assert is_hateful("person", "mocking") and not is_hateful("lookalike", "mocking")  # same caption, look-alike
    assert not is_hateful("landscape", "mocking") and not is_hateful("person", "neutral")  # other image / caption
    assert not is_hateful("person", "group_neutral")
    assert all(is_hateful(c, "explicit") for c in CONTENTS)  # an attack is hateful over anything ...
    assert not any(is_hateful(c, i) for c in CONTENTS if c != "emblem" for i in ("condemning", "counter"))  # ... quoted
    assert is_hateful("emblem", "neutral") and not is_hateful("emblem", "condemning")  # the emblem, unless condemned
    assert not any(is_hateful("emblem_lookalike", i) for i in ("neutral", "group_neutral", "mocking", "counter"))
    assert is_hateful("person", "borderline", hostile=True) and not is_hateful("person", "borderline", hostile=False)


def _oracle_accuracy(records, key) -> float:
    """Accuracy of the best classifier that sees only key(record): the majority true label per key value."""
    groups = defaultdict(list)
    for r in records:
        groups[key(r)].append(r["meta"]["true_label"])
    return sum(Counter(v).most_common(1)[0][1] for v in groups.values()) / len(records)


def test_both_modalities_are_needed(records):
    """Knowing the caption intent exactly, or the image content exactly, is far from enough; both nearly are;
    the hidden account intent settles the rest."""
    by_intent = defaultdict(set)
    by_content = defaultdict(set)
    for r in records:
        by_intent[r["meta"]["intent"]].add(r["meta"]["true_label"])
        by_content[r["meta"]["content"]].add(r["meta"]["true_label"])
    assert by_intent["mocking"] == by_intent["borderline"] == {"hateful", "benign"}
    assert by_content["person"] == by_content["emblem"] == by_content["lookalike"] == {"hateful", "benign"}
    text_only = _oracle_accuracy(records, lambda r: r["meta"]["intent"])
    image_only = _oracle_accuracy(records, lambda r: r["meta"]["content"])
    both = _oracle_accuracy(records, lambda r: (r["meta"]["intent"], r["meta"]["content"]))
    account_only = _oracle_accuracy(records, lambda r: r["meta"]["hostile"])
    everything = _oracle_accuracy(records, lambda r: (r["meta"]["intent"], r["meta"]["content"], r["meta"]["hostile"]))
    assert text_only < 0.82 and image_only < 0.8 and account_only < 0.78, (text_only, image_only, account_only)
    assert both > 0.92 and both - max(text_only, image_only) > 0.12 and everything == 1.0


def test_look_alikes_are_benign_unless_the_caption_attacks(records):
    for r in records:
        meta = r["meta"]
        if meta["content"] in ("emblem_lookalike", "lookalike") and meta["intent"] not in ("explicit", "borderline"):
            assert meta["true_label"] == "benign", meta


def test_label_balance_and_metadata_stays_weak(records):
    hateful = np.mean([r["label"] == "hateful" for r in records])
    assert 0.3 < hateful < 0.45
    hostile = np.array([r["meta"]["hostile"] for r in records])
    reports = np.array([r["tabular"]["prior_reports"] or 0 for r in records])
    assert reports[hostile].mean() > reports[~hostile].mean() + 0.5  # the account intent moves the metadata
    borderline = [r for r in records if r["meta"]["intent"] == "borderline" and r["meta"]["content"] != "emblem"]
    assert all((r["meta"]["true_label"] == "hateful") == r["meta"]["hostile"] for r in borderline)


def test_majority_vote_and_agreement(records):
    for r in records:
        votes = r["meta"]["votes"]
        top, count = Counter(votes).most_common(1)[0]
        assert len(votes) == 3 and r["label"] == top and r["meta"]["agreement"] == count / 3
    noisy = sum(r["label"] != r["meta"]["true_label"] for r in records) / len(records)
    assert 0.01 < noisy < 0.1


def test_agreement_matches_the_annotator_parameters(records):
    opts = SyntheticOptions()
    sample = records[:1000]
    hard_share = np.mean([r["meta"]["hard"] for r in sample])
    expected = expected_agreement(opts.annotator_error_rates, opts.hard_error_boost, hard_share)
    observed = np.mean([r["meta"]["agreement"] for r in sample])
    assert abs(observed - expected) < 0.02, (observed, expected)  # about 4 standard errors
    hard = np.mean([r["meta"]["agreement"] for r in sample if r["meta"]["hard"]])
    easy = np.mean([r["meta"]["agreement"] for r in sample if not r["meta"]["hard"]])
    assert hard < easy - 0.03  # hard memes draw more disagreement
    reasons = Counter(r["meta"]["intent"] for r in sample if r["meta"]["hard"])
    assert {"counter", "condemning", "borderline"} <= set(reasons)


def test_perfect_annotators_and_boost():
    perfect = SyntheticOptions(annotator_error_rates=[0.0, 0.0, 0.0])
    for i in range(200):
        r = make_record(i, perfect)[0]
        assert r["label"] == r["meta"]["true_label"] and r["meta"]["agreement"] == 1.0
    rng = np.random.default_rng(0)
    plain = np.mean([annotate(True, True, [0.1, 0.1, 0.1], 0.0, rng)[2] for _ in range(4000)])
    boosted = np.mean([annotate(True, True, [0.1, 0.1, 0.1], 2.0, rng)[2] for _ in range(4000)])
    assert abs(plain - expected_agreement([0.1] * 3, 0.0, 1.0)) < 0.015
    assert abs(boosted - expected_agreement([0.1] * 3, 2.0, 1.0)) < 0.015 and boosted < plain - 0.1
