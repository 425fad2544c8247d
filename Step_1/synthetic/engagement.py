"""Hourly engagement of a synthetic meme over its first hours: views, shares, replies, reports, accounts.

Every series follows an organic curve: views decay from a meme-specific scale, shares, replies and reports
are drawn per view, and `accounts` counts the distinct accounts that shared or replied that hour. Three
things shape it beyond that:

- a coordinated push: within the first hours, a handful of accounts share the meme over and over (many
  shares, few accounts). Hostile accounts push far more often than others (`coordination_rates`), so the
  push carries the same hidden variable as the metadata — and decides nothing alone.
- an organic viral burst (`viral_rate`, benign and hateful alike): many views, shares and distinct
  accounts at some later hour. The confounder: a burst is not a push.
- reports: hateful memes are reported `hateful_report_ratio` times as often per view (replies 1.2 times), memes that quote
  or condemn hate `condemning_report_ratio` times (reported by mistake), and counts are low and noisy. Each meme draws its
  own rates around the base rates, so a ratio of counts is a weak clue.

Some memes have no series at all (`series_missing_rate`), some lose a run of hours (`series_gap_rate`) and
single hours go missing at `hour_missing_rate`. A missing hour is a row of NaN in every channel.
"""
from __future__ import annotations

import numpy as np

CHANNELS = ("views", "shares", "replies", "reports", "accounts")
REPORTED_BY_MISTAKE = ("condemning", "counter")


def _noisy(rng: np.random.Generator, rate: np.ndarray, shape: float = 4.0) -> np.ndarray:
    """Over-dispersed counts: Poisson with a gamma-distributed rate (mean `rate`)."""
    return rng.poisson(rate * rng.gamma(shape, 1.0 / shape, size=rate.shape)).astype(np.float32)


def make_series(record: dict, steps: int, opts, rng: np.random.Generator) -> tuple[np.ndarray | None, str]:
    """(series (steps, 5) float32 with NaN rows for missing hours, or None; the pattern drawn).

    The pattern is 'none' (no series), 'push' (coordinated), 'viral', 'push+viral' or 'plain'.
    `opts` are the synthetic source's options; `record` its record (meta: hostile, intent, true_label).
    """
    meta = record["meta"]
    if rng.random() < opts.series_missing_rate:
        return None, "none"
    hours = np.arange(steps, dtype=np.float64)
    scale = rng.lognormal(np.log(60.0), 1.0)
    decay = rng.uniform(6.0, 30.0)
    views_rate = scale * (np.exp(-hours / decay) + 0.02)
    viral = rng.random() < opts.viral_rate
    if viral:
        peak, width = rng.uniform(4, steps * 2 / 3), rng.uniform(3, 10)
        views_rate = views_rate * (1 + rng.uniform(5, 20) * np.exp(-((hours - peak) ** 2) / (2 * width ** 2)))
    views = _noisy(rng, views_rate)
    hateful = meta["true_label"] == "hateful"
    # each meme has its own appetite for shares, replies and reports (log-normal around the base rates)
    share_rate, reply_rate, report_rate = 0.05, 0.02 * (1.2 if hateful else 1.0), 0.001
    share_rate, reply_rate, report_rate = np.array([share_rate, reply_rate, report_rate]) * rng.lognormal(
        0.0, [0.4, 0.5, 0.7])
    shares = _noisy(rng, views_rate * share_rate)
    replies = _noisy(rng, views_rate * reply_rate)
    report_rate *= opts.hateful_report_ratio if hateful else 1.0
    if meta["intent"] in REPORTED_BY_MISTAKE:
        report_rate *= opts.condemning_report_ratio
    reports = _noisy(rng, views_rate * report_rate)
    accounts = rng.binomial((shares + replies).astype(np.int64), 0.9).astype(np.float32)
    pushed = rng.random() < opts.coordination_rates["hostile" if meta["hostile"] else "other"]
    if pushed:
        start, length = int(rng.integers(0, 6)), int(rng.integers(1, 4))
        window = slice(start, min(steps, start + length))
        push_shares = rng.poisson(rng.uniform(15, 60), size=window.stop - window.start)
        shares[window] += push_shares
        accounts[window] += np.maximum(1, push_shares // rng.integers(4, 9))
        views[window] += _noisy(rng, push_shares * 3.0)
    series = np.stack([views, shares, replies, reports, accounts], axis=1).astype(np.float32)
    missing = rng.random(steps) < opts.hour_missing_rate
    if rng.random() < opts.series_gap_rate:
        length = int(rng.integers(2, 13))
        start = int(rng.integers(0, steps - length + 1))
        missing[start:start + length] = True
    series[missing] = np.nan
    pattern = "+".join(p for p, on in (("push", pushed), ("viral", viral)) if on) or "plain"
    return series, pattern
