"""Which memes should a reviewer label first? A simulated reviewer on the default data's cached expert features.

(a) Active learning. The pool is the train split (text + vision features of data/embeddings, standardised; the
annotators' labels are the labels a reviewer gives). Start from 20 labelled memes (stratified), then label 50 at
a time, chosen by
  uncertainty   |p - 0.5| smallest under the current logistic regression on text + vision,
  disagreement  |p_text - p_vision| largest, from one logistic regression per modality,
  random        a random order;
refit after each batch and score test_seen AUROC. Reported per strategy over the seeds: the labels needed to reach
95 % of the AUROC of the same model trained on every train label (mean ± std), and the ratio to random.
Each run goes on until it reaches the target and has used --budget labels (the AUROC columns).

(b) Label-issue flags (Step_7.label_issues, on train + val) against the synthetic generator's true labels: a meme
whose annotators' majority label differs from its true label is a real label error. Precision and recall.

Needs data/embeddings (dvc repro); about two minutes on 2 cores. Results: a table on stdout and
bench/results/active_learning.json.

    python -m bench.active_learning
    python -m bench.active_learning --seeds 0 1 2 --budget 520
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from bench.common import ROOT
from core.files import write_json
from Step_4.features.tensors import load_embeddings
from Step_7 import label_issues as li

STRATEGIES = ("uncertainty", "disagreement", "random")
START, BATCH, FRACTION = 20, 50, 0.95


def fit(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """The logistic regression Step_7.label_issues uses (features already standardised)."""
    return LogisticRegression(C=li.C, max_iter=2000).fit(x, y)


def positive(model: LogisticRegression, x: np.ndarray) -> np.ndarray:
    return model.predict_proba(x)[:, 1]


def choose(strategy: str, x: np.ndarray, y: np.ndarray, labelled: np.ndarray, model, text_dim: int,
           rng: np.random.Generator) -> np.ndarray:
    """The next batch: indices of up to BATCH unlabelled pool memes."""
    pool = np.flatnonzero(~labelled)
    if strategy == "random":
        return rng.permutation(pool)[:BATCH]
    if strategy == "uncertainty":
        score = -np.abs(positive(model, x[pool]) - 0.5)
    else:
        idx = np.flatnonzero(labelled)
        text, vision = fit(x[idx, :text_dim], y[idx]), fit(x[idx, text_dim:], y[idx])
        score = np.abs(positive(text, x[pool, :text_dim]) - positive(vision, x[pool, text_dim:]))
    return pool[np.argsort(-score, kind="stable")[:BATCH]]


def simulate(data: dict, strategy: str, seed: int, target: float, budget: int) -> dict:
    """One reviewer's run: {'curve': [[labels, test AUROC], ...], 'labels_needed': first count reaching target,
    or None when the whole pool did not}."""
    x, y = data["pool"], data["labels"]
    rng = np.random.default_rng(seed)
    first, _ = train_test_split(np.arange(len(y)), train_size=START, stratify=y, random_state=seed)
    labelled = np.zeros(len(y), dtype=bool)
    labelled[first] = True
    curve, needed = [], None
    while True:
        idx = np.flatnonzero(labelled)
        model = fit(x[idx], y[idx])
        auroc = float(roc_auc_score(data["test_labels"], positive(model, data["test"])))
        curve.append([int(labelled.sum()), round(auroc, 4)])
        if needed is None and auroc >= target:
            needed = int(labelled.sum())
        if labelled.all() or (needed is not None and labelled.sum() >= budget):
            return {"curve": curve, "labels_needed": needed}
        labelled[choose(strategy, x, y, labelled, model, data["text_dim"], rng)] = True


def load(root: str | Path) -> dict:
    """Standardised pool (train) and test_seen features, text columns first, with the annotators' labels."""
    train = li.load_features(root, splits=("train",))
    test = li.load_features(root, splits=("test_seen",))
    text_dim = load_embeddings(Path(root) / "text" / "test_seen.safetensors")["features"].shape[1]
    scaler = StandardScaler().fit(train["features"])
    return {"pool": scaler.transform(train["features"]), "labels": train["labels"],
            "test": scaler.transform(test["features"]), "test_labels": test["labels"], "text_dim": text_dim}


def summarise(runs: dict, pool_size: int) -> dict:
    """Per strategy: labels needed (mean, std; a run that never reached the target counts as the whole pool),
    runs that reached it, ratio of the mean to random's."""
    out = {}
    for strategy, seeds in runs.items():
        needed = [r["labels_needed"] or pool_size for r in seeds.values()]
        out[strategy] = {"labels_mean": float(np.mean(needed)), "labels_std": float(np.std(needed)),
                         "reached": sum(r["labels_needed"] is not None for r in seeds.values()), "runs": len(seeds)}
    for stats in out.values():
        stats["ratio_to_random"] = round(stats["labels_mean"] / out["random"]["labels_mean"], 3) \
            if "random" in out else None
    return out


def flag_quality(root: str | Path) -> dict:
    """Label-issue flags on train + val scored against the true labels: precision, recall, and precision of the
    50 least self-confident."""
    data = li.load_features(root)
    known = data["true_labels"] >= 0
    errors = {i for i, y, t, k in zip(data["ids"], data["labels"], data["true_labels"], known) if k and y != t}
    probs = li.out_of_fold_probs(data["features"], data["labels"])
    found = li.label_issues(data["ids"], data["labels"], probs, [str(c) for c in range(probs.shape[1])])
    flagged = [f["id"] for f in found]
    hits = len(errors & set(flagged))
    return {"memes": len(data["ids"]), "with_true_label": int(known.sum()), "label_errors": len(errors),
            "flagged": len(flagged), "precision": round(hits / len(flagged), 4) if flagged else None,
            "recall": round(hits / len(errors), 4) if errors else None,
            "precision_top50": round(len(errors & set(flagged[:50])) / min(50, len(flagged)), 4) if flagged else None,
            "error_rate": round(len(errors) / max(int(known.sum()), 1), 4)}


def format_table(results: dict) -> str:
    """The strategies' labels to the target and AUROC at a few budgets, then the label-issue flags."""
    shown = [n for n in (20, 70, 120, 270, 520, 1020) if n <= min(results["budget"], results["pool"])]
    lines = [f"full train ({results['pool']} labels): test_seen AUROC {results['full_auroc']:.4f}; target "
             f"{FRACTION:.0%} of it = {results['target']:.4f}; seeds {results['seeds']}",
             f"{'strategy':<13} {'labels to target':>18} {'reached':>8} {'ratio to random':>16}  "
             + " ".join(f"{'AUROC@' + str(n):>10}" for n in shown), "-" * (60 + 11 * len(shown))]
    for strategy, stats in results["summary"].items():
        at = [np.mean([dict(r["curve"]).get(n, np.nan) for r in results["runs"][strategy].values()]) for n in shown]
        lines.append(f"{strategy:<13} {stats['labels_mean']:>9.0f} ± {stats['labels_std']:<6.0f} "
                     f"{stats['reached']:>4}/{stats['runs']:<3} {stats['ratio_to_random']:>16.2f}  "
                     + " ".join(f"{a:>10.4f}" for a in at))
    flags = results["label_issues"]
    lines += ["", f"label-issue flags (train + val, {flags['memes']} memes, {flags['label_errors']} real label errors "
              f"= {flags['error_rate']:.1%}): {flags['flagged']} flagged, precision {flags['precision']:.3f}, "
              f"recall {flags['recall']:.3f}, precision of the 50 least self-confident {flags['precision_top50']:.3f}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.active_learning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", default="data/embeddings", help="expert embedding cache root")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=520, help="labels every run uses at least (AUROC columns)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "active_learning.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    data = load(args.embeddings)
    full = float(roc_auc_score(data["test_labels"], positive(fit(data["pool"], data["labels"]), data["test"])))
    target = FRACTION * full
    runs = {s: {seed: simulate(data, s, seed, target, args.budget) for seed in args.seeds} for s in STRATEGIES}
    results = {"pool": len(data["labels"]), "test": len(data["test_labels"]), "start": START, "batch": BATCH,
               "budget": args.budget,
               "full_auroc": round(full, 4), "target": round(target, 4), "seeds": args.seeds, "runs": runs,
               "summary": summarise(runs, len(data["labels"])), "label_issues": flag_quality(args.embeddings)}
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(format_table(results))
    write_json(args.out, results)
    print(f"{results['seconds']} s; written to {args.out}")


if __name__ == "__main__":
    main()
