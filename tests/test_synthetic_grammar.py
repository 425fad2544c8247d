"""The caption grammar: variety per intent, invented groups only, paraphrase frames, noise, held-out pools."""
import math
import re
from collections import Counter

import numpy as np
import pytest

from Step_1.synthetic.captions import FRAMES, GROUPS, INTENTS, SLOTS, make_caption, misspell
from Step_1.synthetic.generate import make_record
from Step_1.synthetic.options import SyntheticOptions
from Step_1.synthetic.pools import make_pools
from Step_1.synthetic.scenes import CONTENTS, FAMILIES

SLOT = re.compile(r"\{(\w+)\}")


@pytest.mark.parametrize("intent", INTENTS)
def test_captions_of_each_intent_are_mostly_distinct(intent):
    """Over 1000 captions from the caption function alone: >= 80 % distinct, none repeated more than 4 times."""
    rng = np.random.default_rng(1)
    counts = Counter(make_caption(intent, rng).text for _ in range(1000))
    assert len(counts) >= 800, (intent, len(counts))
    assert counts.most_common(1)[0][1] <= 4, counts.most_common(3)


def test_distinct_captions_per_intent_in_the_default_set():
    """The same guarantee over the default 3000 memes (seen and unseen pools, as rendered)."""
    texts: dict[str, list[str]] = {}
    for i in range(3000):
        record = make_record(i, SyntheticOptions())[0]
        texts.setdefault(record["meta"]["intent"], []).append(record["text"])
    for intent, rows in texts.items():
        assert len(set(rows)) >= 0.8 * len(rows), (intent, len(set(rows)), len(rows))
        assert Counter(rows).most_common(1)[0][1] <= 5


def test_every_pattern_fills_many_ways_even_from_the_unseen_groups():
    """A pattern with few fillings would repeat; count fillings with only the smallest (unseen) group pool."""
    smallest_groups = min(len(pool) for pool in make_pools(13, 0.25, 0.2).groups)  # seen, test and val_unseen
    for frames in FRAMES.values():
        for frame in frames:
            assert len(frame.patterns) >= 3, frame.name
            for pattern in frame.patterns:
                slots = set(SLOT.findall(pattern))
                assert slots <= set(SLOTS) | {"group", "quote"}, (frame.name, slots)
                ways = math.prod(smallest_groups if s == "group" else 100 if s == "quote" else len(SLOTS[s])
                                 for s in slots)
                assert ways >= 24, (frame.name, pattern, ways)


def test_invented_groups_only():
    assert len(GROUPS) >= 16 and len(set(GROUPS)) == len(GROUPS)
    rng = np.random.default_rng(2)
    for intent in ("explicit", "counter", "borderline", "group_neutral", "condemning"):
        for _ in range(100):
            caption = make_caption(intent, rng, typo_rate=0.0)
            if caption.group is not None:
                assert caption.group in GROUPS and caption.group in caption.text
    for intent in ("neutral", "mocking"):  # these name nobody: the target is whoever is pictured
        assert all(make_caption(intent, rng).group is None for _ in range(100))
    assert not set(SLOTS["insult"]) & set(GROUPS)


def test_grammar_has_negation_questions_quotes_sarcasm_and_typos():
    rng = np.random.default_rng(3)
    counter = [make_caption("counter", rng) for _ in range(300)]
    assert any(" NOT " in c.text for c in counter) and any(c.text.endswith("?") for c in counter)
    condemning = [make_caption("condemning", rng) for _ in range(300)]
    quoting = [c for c in condemning if c.quoted_frame]
    assert quoting and all(c.quoted_frame.startswith("explicit.") and '"' in c.text for c in quoting)
    assert any(c.text.endswith("?") for c in (make_caption("explicit", rng) for _ in range(200)))
    mocking = [make_caption("mocking", rng, sarcasm_rate=0.5) for _ in range(200)]
    assert 0.3 < np.mean([c.sarcasm for c in mocking]) < 0.7
    assert all(c.sarcasm for c in (make_caption("borderline", rng) for _ in range(50)))
    noisy = [make_caption("neutral", rng, typo_rate=0.3) for _ in range(100)]
    clean = [make_caption("neutral", rng, typo_rate=0.0) for _ in range(100)]
    assert sum(c.typos for c in noisy) > 50 and sum(c.typos for c in clean) == 0


def test_misspell_changes_a_word_by_one_edit():
    rng = np.random.default_rng(4)
    for word in ("ruining", "quenari", "everyone", "parallel"):
        typos = [misspell(word, rng) for _ in range(20)]
        assert all(t[0] == word[0] and abs(len(t) - len(word)) <= 1 for t in typos)
        assert sum(t != word for t in typos) >= 15  # a swap of two equal letters is the only no-op
    assert misspell("the", rng) == "the" and misspell("2024", rng) == "2024"


@pytest.mark.parametrize("seed", [13, 99])
def test_seen_and_unseen_pools_share_nothing(seed):
    pools = make_pools(seed, 0.25)
    for intent in INTENTS:
        seen, unseen, val = pools.frames[intent]
        assert unseen and seen and not val and set(seen) | set(unseen) == set(FRAMES[intent])
        assert not {f.name for f in seen} & {f.name for f in unseen}
        assert not {p for f in seen for p in f.patterns} & {p for f in unseen for p in f.patterns}
        assert len(unseen) == max(1, round(0.25 * len(FRAMES[intent])))
    seen, unseen, _ = pools.groups
    assert unseen and not set(seen) & set(unseen) and set(seen) | set(unseen) == set(GROUPS)
    for content in CONTENTS:
        seen, unseen, _ = pools.families[content]
        assert unseen and seen and not set(seen) & set(unseen) and set(seen) | set(unseen) == set(FAMILIES[content])
    assert make_pools(seed, 0.25) == pools and make_pools(seed + 1, 0.25) != pools


def test_unseen_memes_use_only_unseen_material_and_the_others_only_seen():
    opts = SyntheticOptions()
    pools = make_pools(opts.seed, opts.unseen_fraction)
    unseen_count = 0
    for i in range(1000):
        record = make_record(i, opts)[0]
        meta = record["meta"]
        side = 1 if record["split"] == "test_unseen" else 0  # no val_unseen with the default options
        assert record["split"] in (None, "test_unseen") and meta["unseen"] == bool(side)
        unseen_count += side
        frames = {f.name for f in pools.frames[meta["intent"]][side]}
        assert meta["frame"] in frames
        if meta["quoted_frame"]:
            assert meta["quoted_frame"] in {f.name for f in pools.frames["explicit"][side]}
        if meta["group"] is not None:
            assert meta["group"] in pools.groups[side]
        content, family = meta["image_family"].split("/")
        assert content == meta["content"] and family in pools.families[content][side]
    assert 0.11 < unseen_count / 1000 < 0.19  # unseen_share = 0.15
    none = SyntheticOptions(unseen_share=0.0)
    assert all(make_record(i, none)[0]["split"] is None for i in range(200))


def test_val_unseen_material_is_held_out_from_training_and_from_test_unseen():
    """val_unseen memes (model selection) use held-out frames, groups and image families of their own: none of
    them is in test_unseen's or in the seen material, and test_unseen's material and memes stay what they were."""
    opts = SyntheticOptions(val_unseen_fraction=0.2, val_unseen_share=0.1)
    pools, before = make_pools(opts.seed, opts.unseen_fraction, 0.2), make_pools(opts.seed, opts.unseen_fraction)
    parts = [("groups", pools.groups, before.groups)] + [
        (f"frames {i}", pools.frames[i], before.frames[i]) for i in INTENTS] + [
        (f"families {c}", pools.families[c], before.families[c]) for c in CONTENTS]
    for where, (seen, test, val), (_, test_before, _) in parts:
        assert val and seen, where
        assert not set(val) & set(test) and not set(val) & set(seen) and not set(test) & set(seen), where
        assert test == test_before, where  # test_unseen's material does not depend on the val share
    splits = {}
    for i in range(600):
        record, plain = make_record(i, opts)[0], make_record(i, SyntheticOptions())[0]
        side = {None: 0, "test_unseen": 1, "val_unseen": 2}[record["split"]]
        splits[side] = splits.get(side, 0) + 1
        meta = record["meta"]
        assert meta["frame"] in {f.name for f in pools.frames[meta["intent"]][side]}
        assert meta["group"] is None or meta["group"] in pools.groups[side]
        assert meta["image_family"].split("/")[1] in pools.families[meta["content"]][side]
        if side == 1:
            assert record == plain  # the same test_unseen meme as without val_unseen
    assert splits[1] > 50 and splits[2] > 30 and splits[0] > 400
