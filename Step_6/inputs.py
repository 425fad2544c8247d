"""What the evaluate stage reads, aligned by shard id: the evaluated splits' memes and labels, the experts' cached
embeddings and every model's logits."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import PipelineError
from core.files import read_json
from Step_3.reader import ShardReader, filled_splits
from Step_3.splits import EVALUATED
from Step_4.features.tensors import load_embeddings
from Step_5.data import check_same_ids, load_predictions


@dataclass
class EvaluationInputs:
    """The evaluated splits (those of EVALUATED that hold memes) and, per split, rows in shard-id order."""

    reader: ShardReader
    comparison: dict  # the compare stage's output: which models exist, best picks
    splits: list[str]
    samples: dict[str, dict[str, dict]]  # split -> id -> decoded sample (no image)
    ids: dict[str, list[str]]  # split -> sorted ids
    modalities: list[str]  # the experts compared
    methods: list[str]  # the fusion methods compared
    experts: dict[str, dict[str, dict]]  # modality -> split -> cached embeddings
    logits: dict[str, dict[str, np.ndarray]]  # model -> split -> logits (N, C)
    labels: dict[str, np.ndarray]  # split -> class ids (-1: unlabelled)
    keep: dict[str, np.ndarray]  # split -> labelled rows
    y: dict[str, np.ndarray]  # split -> 1 for the positive class, labelled rows only

    @property
    def classes(self) -> list[str]:
        return self.reader.meta["classes"]

    @property
    def positive(self) -> int:
        return self.reader.meta["positive_index"]


def load_inputs(shards: str, comparison_path: str, embeddings: str, fusion_models: str) -> EvaluationInputs:
    """Read the shards, the comparison, the cached embeddings and the fusion predictions; every model must
    cover exactly the shards' memes of every evaluated split, and val must hold memes (calibration is fitted
    on it)."""
    reader = ShardReader(shards)
    positive = reader.meta["positive_index"]
    splits = [s for s in EVALUATED if s in filled_splits(reader.meta)]
    samples = {s: {x["id"]: x for x in reader.samples(s, decode_images=False)} for s in splits}
    ids = {s: sorted(samples[s]) for s in splits}
    comparison = read_json(comparison_path)
    modalities = [n.removesuffix("_expert") for n in comparison["models"] if n.endswith("_expert")]
    methods = [n.removeprefix("fusion_") for n in comparison["models"] if n.startswith("fusion_")]
    if not methods:
        raise PipelineError(f"{comparison_path} lists no fusion model; run the fusion stages first (dvc repro)")
    if "val" not in splits:
        raise PipelineError("the shards hold no val memes: calibration and operating points are fitted on val; "
                            "give shard.fractions a val share")
    experts = load_expert_embeddings(Path(embeddings), modalities, splits, ids)
    logits = load_logits(experts, Path(fusion_models), methods, splits, ids)
    labels = {s: np.array([int(samples[s][i]["meta"]["label"]) for i in ids[s]]) for s in splits}
    keep = {s: labels[s] >= 0 for s in splits}
    y = {s: (labels[s][keep[s]] == positive).astype(int) for s in splits}
    return EvaluationInputs(reader, comparison, splits, samples, ids, modalities, methods, experts, logits, labels,
                            keep, y)


def load_expert_embeddings(embeddings: Path, modalities: list[str], splits: list[str],
                           shard_ids: dict[str, list[str]]) -> dict[str, dict[str, dict]]:
    """{modality: {split: cached embeddings}}, each checked to hold exactly the split's shard ids (sorted)."""
    out: dict[str, dict[str, dict]] = {}
    for m in modalities:
        for split in splits:
            data = load_embeddings(embeddings / m / f"{split}.safetensors")
            check_same_ids(f"split '{split}': the {m} embeddings", data["ids"], shard_ids[split], "the shards")
            out.setdefault(m, {})[split] = data
    return out


def load_logits(experts: dict[str, dict[str, dict]], fusion_dir: Path, methods: list[str], splits: list[str],
                shard_ids: dict[str, list[str]]) -> dict[str, dict[str, np.ndarray]]:
    """{model: {split: logits (N, C)}} with rows in shard-id order: the experts' seed ensembles from their
    embeddings, the fusions' (seed ensembles too) from their saved predictions (checked against the shards)."""
    logits = {f"{m}_expert": {s: d.get("ensemble_logits", d["logits"]).float().numpy() for s, d in per.items()}
              for m, per in experts.items()}
    for method in methods:
        predictions = load_predictions(fusion_dir / method / "predictions.safetensors")
        for split in splits:
            if split not in predictions:
                raise PipelineError(f"{fusion_dir / method} has no predictions for '{split}'; rerun the fusion stages")
            check_same_ids(f"split '{split}': the fusion_{method} predictions", predictions[split]["ids"],
                           shard_ids[split], "the shards")
            logits.setdefault(f"fusion_{method}", {})[split] = predictions[split]["log_probs"].float().numpy()
    return logits
