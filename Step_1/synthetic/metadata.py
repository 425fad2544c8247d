"""Account and post metadata of a synthetic meme (its tabular fields), shifted by the hidden account intent."""
from __future__ import annotations

import numpy as np

NUMERIC_FIELDS = ("account_age_days", "followers", "prior_reports", "hour_posted", "hashtags")
CATEGORICAL_FIELDS = ("platform", "verified", "region")
PLATFORMS = ("forum", "microblog", "imageboard", "chat")
REGIONS = ("north", "south", "east", "west", "central", "islands")


def make_tabular(hostile: bool, missing_rate: float, shift: float, rng: np.random.Generator) -> dict:
    """Account and post metadata, shifted by the hidden account intent, with some missing values."""
    h = shift if hostile else 0.0
    platform_w = np.array([0.3, 0.3, 0.2, 0.2]) + h * np.array([-0.05, -0.05, 0.12, -0.02])
    row = {
        "account_age_days": round(float(rng.lognormal(6.3 - 0.45 * h, 1.0)), 1),
        "followers": int(rng.lognormal(5.0 - 0.3 * h, 1.5)),
        "prior_reports": int(rng.poisson(0.8 + 0.7 * h)),
        "hour_posted": int((rng.normal(15 + 2.5 * h, 5.0)) % 24),
        "hashtags": int(rng.poisson(2.0 + 0.6 * h)),
        "platform": PLATFORMS[rng.choice(4, p=platform_w / platform_w.sum())],
        "verified": "yes" if rng.random() < max(0.02, 0.22 - 0.1 * h) else "no",
        "region": REGIONS[rng.integers(len(REGIONS))],
    }
    for key in row:
        if rng.random() < missing_rate:
            row[key] = None
    return row
