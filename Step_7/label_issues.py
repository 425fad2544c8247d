"""Suspected label errors in the training data: cleanlab's find_label_issues on out-of-fold predicted probabilities.

The pipeline saves no out-of-fold probabilities (the crossval study keeps metrics only), so unless --predictions
names a file of them they are computed here: 5-fold stratified cross-validated logistic regression (fixed seed;
standardised features, C = 0.003, the best out-of-fold log loss on the default data) on the cached text + vision
expert features (data/embeddings) of the labelled train + val memes, each meme scored by the model that did not
see it. Writes the flagged memes ranked by self-confidence (the out-of-fold probability of the given label, lowest
first): {id, given_label, suggested_label, self_confidence}.

    python -m Step_7.label_issues --out reports/label_issues.json --top 100
    python -m Step_7.label_issues --predictions oof.jsonl --out reports/label_issues.json
    python -m Step_7.label_issues --enqueue 50    # the 50 least self-confident into the review queue

A --predictions / --save-predictions file holds one JSON object per meme: {"id", "label" (class name), "probs"
(one probability per class of the taxonomy, in its order)}.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from cleanlab.filter import find_label_issues
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.cli import run_cli
from core.errors import PipelineError
from core.files import read_json, read_jsonl, write_json, write_jsonl
from core.params import section
from Step_4.features.tensors import load_embeddings
from Step_7.config import ServeConfig
from Step_7.store import LabelStore

MODALITIES = ("text", "vision")
SPLITS = ("train", "val")
FOLDS, SEED, C = 5, 0, 0.003


def load_features(root: str | Path, splits=SPLITS, modalities=MODALITIES) -> dict:
    """{'ids', 'features' (N, sum of D), 'labels' (N,), 'true_labels' (N,: -1 unknown)} of the labelled memes of
    `splits`, the modalities' cached features side by side."""
    parts = {"ids": [], "features": [], "labels": [], "true_labels": []}
    for split in splits:
        per = [load_embeddings(Path(root) / m / f"{split}.safetensors") for m in modalities]
        if any(p["ids"] != per[0]["ids"] for p in per):
            raise PipelineError(f"split '{split}': the {list(modalities)} embeddings hold different memes; rerun the "
                                "expert stages (dvc repro)")
        keep = per[0]["labels"].numpy() >= 0
        parts["ids"] += [i for i, k in zip(per[0]["ids"], keep) if k]
        parts["features"].append(np.hstack([p["features"].float().numpy() for p in per])[keep])
        parts["labels"].append(per[0]["labels"].numpy()[keep])
        parts["true_labels"].append(per[0]["true_labels"].numpy()[keep])
    return {"ids": parts["ids"], **{k: np.concatenate(v) for k, v in parts.items() if k != "ids"}}


def out_of_fold_probs(features: np.ndarray, labels: np.ndarray, folds: int = FOLDS, seed: int = SEED) -> np.ndarray:
    """(N, C) probabilities, each row from the logistic regression trained on the other folds."""
    smallest = np.bincount(labels).min()
    if smallest < folds:
        raise PipelineError(f"a class has {smallest} labelled memes, fewer than the {folds} folds; label more memes")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(model, features, labels, cv=cv, method="predict_proba")


def label_issues(ids: list[str], labels: np.ndarray, probs: np.ndarray, classes: list[str],
                 top: int | None = None) -> list[dict]:
    """The memes cleanlab flags, lowest self-confidence first (at most `top`)."""
    labels = np.asarray(labels)
    ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    found = [{"id": ids[i], "given_label": classes[labels[i]], "suggested_label": classes[int(np.argmax(probs[i]))],
              "self_confidence": round(float(probs[i, labels[i]]), 4)} for i in ranked]
    return found[:top] if top is not None else found


def read_predictions(path: Path, classes: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, labels, probs) from a --predictions file."""
    if not path.is_file():
        raise PipelineError(f"{path} not found; leave out --predictions to compute them from the embeddings")
    rows = read_jsonl(path)
    for n, row in enumerate(rows, start=1):
        if row.get("label") not in classes or len(row.get("probs") or []) != len(classes):
            raise PipelineError(f"{path}:{n}: needs 'label' (one of {classes}) and 'probs' ({len(classes)} numbers)")
    return ([str(r["id"]) for r in rows], np.array([classes.index(r["label"]) for r in rows]),
            np.array([r["probs"] for r in rows], dtype=float))


def enqueue_issues(issues: list[dict], probs: dict[str, np.ndarray], records: Path, store, classes: list[str],
                   positive: str) -> dict:
    """Put flagged memes in the review queue (source 'label_issue'), their image read from the prepared records;
    returns {'queued', 'already_queued', 'missing'}."""
    if not records.is_file():
        raise PipelineError(f"{records} not found; run the prepare stage first (dvc repro prepare)")
    by_id = {r["id"]: r for r in read_jsonl(records)}
    counts = {"queued": 0, "already_queued": 0, "missing": 0}
    for issue in issues:
        record = by_id.get(issue["id"])
        if record is None or not Path(record["image"]).is_file():
            counts["missing"] += 1
            continue
        image = Path(record["image"])
        p = float(probs[issue["id"]][classes.index(positive)])
        scored = {"probability": p, "threshold": 0.5, "label": issue["given_label"], "flagged": None,
                  "suggested_label": issue["suggested_label"], "self_confidence": issue["self_confidence"],
                  "given_label": issue["given_label"], "experts": {}, "gates": {}, "neighbours": [],
                  "model": "out-of-fold logistic regression", "source_id": issue["id"]}
        media = "image/png" if image.suffix.lower() == ".png" else "image/jpeg"
        _, new = store.add_item(image=image.read_bytes(), media_type=media, source="label_issue",
                                text=record.get("text"), scored=scored)
        counts["queued" if new else "already_queued"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_7.label_issues", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", type=Path, default=None, help="out-of-fold probabilities (default: compute)")
    parser.add_argument("--embeddings", default="data/embeddings", help="expert embedding cache root")
    parser.add_argument("--taxonomy", default="data/label_taxonomy.json", help="class names (from the shard stage)")
    parser.add_argument("--save-predictions", type=Path, default=None, help="write the computed probabilities here")
    parser.add_argument("--out", type=Path, default=Path("reports/label_issues.json"))
    parser.add_argument("--top", type=int, default=None, help="keep the N least self-confident (default: all)")
    parser.add_argument("--enqueue", type=int, default=0, metavar="N",
                        help="put the N least self-confident memes in the review queue (serve.db_url)")
    parser.add_argument("--records", type=Path, default=Path("data/prepared/records.jsonl"),
                        help="prepared records (each meme's image), for --enqueue")
    parser.add_argument("--params", default="params.yaml", help="params file (serve.db_url), for --enqueue")
    args = parser.parse_args()
    if not Path(args.taxonomy).is_file():
        raise PipelineError(f"{args.taxonomy} not found; run the shard stage first (dvc repro shard)")
    taxonomy = read_json(args.taxonomy)
    classes = taxonomy["classes"]
    if args.predictions:
        ids, labels, probs = read_predictions(args.predictions, classes)
        how = f"out-of-fold probabilities from {args.predictions}"
    else:
        data = load_features(args.embeddings)
        ids, labels = data["ids"], data["labels"]
        probs = out_of_fold_probs(data["features"], labels)
        how = f"{FOLDS}-fold logistic regression (C={C}) on the {'+'.join(MODALITIES)} features of {'+'.join(SPLITS)}"
    if args.save_predictions and not args.predictions:
        write_jsonl(args.save_predictions, [{"id": i, "label": classes[y], "probs": [round(float(p), 6) for p in row]}
                                            for i, y, row in zip(ids, labels, probs)])
    found = label_issues(ids, labels, probs, classes)
    shown = found[:args.top] if args.top is not None else found
    write_json(args.out, {"method": how, "memes": len(ids), "flagged": len(found), "issues": shown})
    print(f"{len(found)} of {len(ids)} memes flagged as suspected label errors ({how}); "
          f"{len(shown)} written to {args.out}")
    if args.enqueue > 0:
        cfg = section(ServeConfig, "serve", args.params)
        positive = taxonomy["positive"]
        store = LabelStore(cfg.db_url, positive=positive, negative=next(c for c in classes if c != positive))
        counts = enqueue_issues(found[:args.enqueue], dict(zip(ids, probs)), args.records, store, classes, positive)
        print(f"review queue ({cfg.db_url}): " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    run_cli(main)
