"""Meme-style captions with an intent class, built from templates with invented group names.

Intents:
- neutral: everyday jokes; some mention a group in a harmless way (a text-side confounder).
- mocking: ridicule aimed at whoever is pictured; hateful only over an image of people.
- explicit: openly hateful toward an invented group, whatever the image.
No real group names or slurs appear: groups are invented, insults are neutral placeholder words.
"""
from __future__ import annotations

import numpy as np

INTENTS = ("neutral", "mocking", "explicit")

GROUPS = ("vorlish", "quenari", "tesks", "mirrans", "zeloths", "brandovians", "ostari", "kelvenites")
PLACES = ("our town", "this country", "the office", "our schools", "the city", "our street", "the park", "the internet")
THINGS = ("respect", "a seat at the table", "any rights", "to vote", "a job here", "to be heard", "our help")
EVERYDAY = ("coffee", "monday", "the weekend", "my diet", "homework", "the wifi", "my alarm", "leg day", "payday",
            "the group chat", "my cat", "laundry", "the bus", "pizza", "my plants", "taxes")
ADJECTIVES = ("proud", "confident", "smart", "brave", "organized", "special", "important", "clever")
VERBS = ("dance", "cook", "park", "sing", "think", "drive", "dress up", "take a selfie")

NEUTRAL_TEMPLATES = (
    "when {everyday} finally works out",
    "me waiting for {everyday}",
    "nobody: me at 3am thinking about {everyday}",
    "this is fine",
    "when you remember {everyday} is tomorrow",
    "how it started how it is going",
    "{everyday} be like",
    "one does not simply skip {everyday}",
    "i am once again asking about {everyday}",
    "when {everyday} hits different",
    "trust me i am an expert in {everyday}",
    "{group} food festival this weekend in {place}",
    "learning the {group} language one word a day",
    "happy new year to all my {group} friends",
)
MOCKING_TEMPLATES = (
    "look at them trying to {verb}",
    "imagine being this {adjective}",
    "they really thought they did something",
    "when they try to {verb} like normal people",
    "peak evolution right here",
    "they let anyone {verb} these days",
    "so {adjective} yet so clueless",
    "this is what they call {everyday}",
    "somebody tell them about {everyday}",
    "the face of a genius",
    "bless their tiny brains",
    "at least they tried to {verb}",
    "no thoughts head empty",
)
EXPLICIT_TEMPLATES = (
    "{group} do not deserve {thing}",
    "no {group} allowed in {place}",
    "get every {group} out of {place}",
    "{group} are ruining {place}",
    "{group} should never get {thing}",
    "send the {group} back where they came from",
    "{group} are a disease on {place}",
    "keep {group} away from {place}",
    "{group} are not people like us",
)
_TEMPLATES = {"neutral": NEUTRAL_TEMPLATES, "mocking": MOCKING_TEMPLATES, "explicit": EXPLICIT_TEMPLATES}


def make_caption(intent: str, rng: np.random.Generator) -> str:
    """A lower-case caption for `intent`; rendering upper-cases it."""
    templates = _TEMPLATES[intent]
    template = templates[rng.integers(len(templates))]
    slots = {
        "group": GROUPS[rng.integers(len(GROUPS))],
        "place": PLACES[rng.integers(len(PLACES))],
        "thing": THINGS[rng.integers(len(THINGS))],
        "everyday": EVERYDAY[rng.integers(len(EVERYDAY))],
        "adjective": ADJECTIVES[rng.integers(len(ADJECTIVES))],
        "verb": VERBS[rng.integers(len(VERBS))],
    }
    return template.format(**slots)


def split_top_bottom(caption: str, rng: np.random.Generator) -> tuple[str, str]:
    """Place the caption top only, bottom only, or split across both at a word boundary."""
    words = caption.split()
    layout = rng.choice(["top", "bottom", "both"], p=[0.3, 0.2, 0.5])
    if layout == "both" and len(words) >= 4:
        cut = int(rng.integers(2, len(words) - 1))
        return " ".join(words[:cut]), " ".join(words[cut:])
    if layout == "bottom":
        return "", caption
    return caption, ""
