"""The label rule of synthetic memes and their three simulated annotators.

Label rule (the true label; `label` is the majority of three simulated annotators):

1. Hate emblem in the image (content `emblem`: a ring holding three sharp prongs, in any variant or medium)
   → hateful, unless the caption condemns or counters it (intent `condemning` or `counter`) → benign.
   Look-alike symbols (`emblem_lookalike`: flowers, wheels, four- or five-prong stars, clocks, fans,
   bullseyes, knots) are benign.
2. Explicit attack on a group (intent `explicit`) → hateful, whatever the image. Quoting or reporting
   such an attack in order to condemn it (intent `condemning`), or negating it ("X are NOT ruining Y",
   intent `counter`) → benign, whatever the image.
3. Mocking or dehumanising caption (intent `mocking`, aimed at whoever is pictured) → hateful over an
   image of real people (content `person`: photographs, drawn figures, portraits, crowds, stick
   figures, a video call); benign over people-like non-people (`lookalike`: statues, mannequins,
   posters of people, dressed animals, snowmen, robots, scarecrows) and over anything else.
4. Borderline sarcasm about a group (intent `borderline`) → hateful when the hidden account intent
   is hostile, benign otherwise. The account intent also shifts the metadata (account age,
   followers, prior reports, hour posted, hashtags, platform, verified), so for these memes the
   tabular fields are the only — weak — tie-breaker.
5. Everything else is benign: everyday captions (`neutral`) and harmless mentions of a group
   (`group_neutral`) over any image, people included.

So the caption alone cannot decide rules 1, 3 and 4, the image alone cannot decide rules 1–5, and the
metadata alone is weak: hostile accounts are only somewhat more common among hateful memes
(`hostile_rates`). Three annotators vote on every meme with their own error rates
(`annotator_error_rates`), raised by `hard_error_boost` on hard memes (counter, condemning,
borderline or sarcastic captions, look-alike images). A share of memes (`unseen_share`) is built
only from held-out caption frames, group names and image families (`unseen_fraction` of each pool)
and carries split `test_unseen`; another (`val_unseen_share`) only from other held-out material
(`val_unseen_fraction` of each pool, never test_unseen's) and carries split `val_unseen`.
"""
from __future__ import annotations

import numpy as np

LABELS = ("benign", "hateful")
HARD_INTENTS = ("counter", "condemning", "borderline")
HARD_CONTENTS = ("lookalike", "emblem_lookalike")
CONDEMNS = ("condemning", "counter")


def is_hateful(content: str, intent: str, hostile: bool = False) -> bool:
    """The label rule of the module docstring: image content × caption intent (× hidden account intent)."""
    if content == "emblem":
        return intent not in CONDEMNS
    if intent == "explicit":
        return True
    if intent == "mocking":
        return content == "person"
    if intent == "borderline":
        return hostile
    return False


def is_hard(content: str, intent: str, sarcasm: bool) -> bool:
    """Memes that draw more annotator disagreement: counter-speech, condemning quotes, borderline or
    sarcastic captions, and people-like or emblem-like images."""
    return intent in HARD_INTENTS or sarcasm or content in HARD_CONTENTS


def annotate(true_hateful: bool, hard: bool, error_rates, boost: float,
             rng: np.random.Generator) -> tuple[list[str], str, float]:
    """Three votes (label strings), the majority label and the agreement with it (2/3 or 1.0)."""
    votes = []
    for rate in error_rates:
        rate = min(0.5, rate * (1.0 + boost)) if hard else rate
        votes.append(LABELS[int(true_hateful != (rng.random() < rate))])
    majority = max(LABELS, key=votes.count)
    return votes, majority, votes.count(majority) / 3


def expected_agreement(error_rates, boost: float, hard_share: float) -> float:
    """Mean agreement implied by the annotator parameters when `hard_share` of memes are hard."""
    def unanimous(rates):
        return float(np.prod([1 - e for e in rates]) + np.prod(rates))
    hard = [min(0.5, e * (1 + boost)) for e in error_rates]
    p = (1 - hard_share) * unanimous(error_rates) + hard_share * unanimous(hard)
    return p + (1 - p) * 2 / 3
