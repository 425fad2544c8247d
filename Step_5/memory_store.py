"""A labelled memory of memes: keys from the experts' features, an exact kNN vote, and its blend with the fusion head.

A key is the concatenation, over the memory's modalities, of each expert's L2-normalised features times that
modality's weight (zeros where the meme lacks the modality); its layout [(modality, dim, weight), ...] travels
with the file. Keys come from the experts, not from inside a fusion head, so a retrained head keeps its memory.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save

from core.errors import PipelineError
from core.files import atomic_write_bytes
from Step_4.features.tensors import load_embeddings

Layout = list[tuple[str, int, float]]


def memory_keys(features: dict[str, torch.Tensor], present: dict[str, torch.Tensor], layout: Layout) -> torch.Tensor:
    """(N, sum of dims) keys: per modality of the layout, the L2-normalised features (N, D_m) times its weight,
    zeros in rows where `present` (N,) is false."""
    blocks = []
    for modality, dim, weight in layout:
        if modality not in features:
            raise PipelineError(f"the memory's keys need '{modality}' features; this model has "
                                f"{', '.join(k for k in features if torch.is_tensor(features[k]))}")
        block = features[modality].detach().float().cpu()
        if block.shape[1] != dim:
            raise PipelineError(f"the '{modality}' features have {block.shape[1]} dimensions, the memory's keys {dim}; "
                                "the expert changed: rebuild the memory (dvc repro memory) and add the memes again")
        blocks.append(F.normalize(block, dim=1) * weight * present[modality].detach().cpu().float()[:, None])
    return torch.cat(blocks, dim=1)


def embedding_keys(embeddings: Path, split: str, weights: dict[str, float], labelled: bool = False) -> dict:
    """{'ids', 'keys' (N, D), 'labels' (N,), 'layout', 'n_classes'} of one split of the embeddings cache; with
    `labelled`, only the labelled rows that hold at least one of the memory's modalities."""
    per = {m: load_embeddings(Path(embeddings) / m / f"{split}.safetensors") for m in weights}
    first = next(iter(per.values()))
    for m, data in per.items():
        if data["ids"] != first["ids"]:
            raise PipelineError(f"split '{split}': the '{m}' embeddings hold other samples than the others; rerun "
                                "the expert stages (dvc repro)")
    layout = [(m, per[m]["features"].shape[1], w) for m, w in weights.items()]
    keys = memory_keys({m: d["features"] for m, d in per.items()}, {m: d["present"] for m, d in per.items()}, layout)
    keep = torch.ones(len(first["ids"]), dtype=torch.bool)
    if labelled:
        keep = (first["labels"] >= 0) & torch.stack([d["present"] for d in per.values()], 1).any(1)
    rows = keep.nonzero().flatten()
    return {"ids": [first["ids"][i] for i in rows.tolist()], "keys": keys[rows], "labels": first["labels"][rows],
            "layout": layout, "n_classes": first["logits"].shape[1]}


def relayout(keys: torch.Tensor, source: Layout, target: Layout) -> torch.Tensor:
    """Keys of `source` layout re-cut and re-weighted into `target` (its modalities must all be in source)."""
    starts, at = {}, 0
    for modality, dim, weight in source:
        starts[modality] = (at, dim, weight)
        at += dim
    blocks = []
    for modality, dim, weight in target:
        if modality not in starts or starts[modality][1] != dim:
            raise PipelineError(f"memory keys of layout {source} cannot serve layout {target} ('{modality}' is "
                                "missing or of another size); add those memes again with `python -m Step_5.memory add`")
        start, _, old = starts[modality]
        blocks.append(keys[:, start:start + dim] * (weight / old))
    return torch.cat(blocks, dim=1) if blocks else keys[:, :0]


def combine(p_head: torch.Tensor, p_knn: torch.Tensor, weight: float) -> torch.Tensor:
    """Interpolation of the head's and the memory's positive-class probabilities: (1 - weight)·head + weight·kNN."""
    return (1 - weight) * p_head + weight * p_knn


def require_faiss():
    try:
        import faiss
    except ImportError:
        raise PipelineError("memory.index is faiss but faiss is not installed: `pip install faiss-cpu`, or set "
                            "memory.index: exact in params.yaml") from None
    return faiss


class LabelledMemory:
    """Labelled keys (N, D float32) with their ids; an exact kNN vote over them.

    Args:
        layout: [(modality, dim, weight), ...] of the keys.
        classes: class names (labels index them); positive: the index the vote scores.
        neighbours, temperature: the top `neighbours` labels vote, weighted by softmax(similarity / temperature).
        weight: the memory's share when combined with a head; index: exact (matrix product) or faiss.
        notes: anything else to keep in the file's metadata (JSON).
    """

    def __init__(self, layout: Layout, *, classes: list[str], positive: int, neighbours: int = 32,
                 temperature: float = 0.1, weight: float = 0.7, index: str = "exact", notes: dict | None = None):
        self.layout = [(str(m), int(d), float(w)) for m, d, w in layout]
        self.classes, self.positive = list(classes), int(positive)
        self.top_k, self.temperature, self.weight, self.index = neighbours, temperature, weight, index
        self.notes = dict(notes or {})
        self.keys = torch.zeros(0, sum(d for _, d, _ in self.layout))  # (N, D)
        self.labels = torch.zeros(0, dtype=torch.long)  # (N,)
        self.ids: list[str] = []
        self._faiss = None
        if index == "faiss":
            require_faiss()

    def __len__(self) -> int:
        return len(self.ids)

    def settings(self) -> dict:
        return {"layout": self.layout, "classes": self.classes, "positive": self.positive, "index": self.index,
                "neighbours": self.top_k, "temperature": self.temperature, "weight": self.weight,
                "notes": self.notes}

    def copy(self) -> LabelledMemory:
        other = LabelledMemory(**self.settings())
        other.keys, other.labels, other.ids = self.keys.clone(), self.labels.clone(), list(self.ids)
        return other

    def add(self, ids: list[str], keys: torch.Tensor, labels) -> None:
        """Append rows; an id already held is replaced (its new label wins)."""
        if not len(ids):
            return
        keys = torch.as_tensor(keys, dtype=torch.float32).reshape(len(ids), -1)
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if keys.shape[1] != self.keys.shape[1] or len(labels) != len(ids):
            raise PipelineError(f"memory add: {len(ids)} ids, keys {tuple(keys.shape)}, {len(labels)} labels; "
                                f"expected keys of width {self.keys.shape[1]} and one label per id")
        if len(set(ids)) != len(ids):
            raise PipelineError("memory add: the same id twice in one call (the same image given twice?)")
        if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < len(self.classes)):
            raise PipelineError(f"memory add: labels must index the classes {self.classes}")
        held = set(self.ids)
        self.remove([i for i in ids if i in held])
        self.keys, self.labels = torch.cat([self.keys, keys]), torch.cat([self.labels, labels])
        self.ids += list(ids)
        self._faiss = None

    def remove(self, ids: list[str]) -> list[str]:
        """Drop the rows with these ids; returns the ids that were held."""
        drop = set(ids)
        keep = [i for i, name in enumerate(self.ids) if name not in drop]
        removed = [name for name in self.ids if name in drop]
        rows = torch.tensor(keep, dtype=torch.long)
        self.keys, self.labels, self.ids = self.keys[rows], self.labels[rows], [self.ids[i] for i in keep]
        self._faiss = None
        return removed

    def neighbours(self, query: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row indices (Q, k') and similarities (Q, k') of the k' = min(k, N) most similar keys, best first."""
        query = torch.as_tensor(query, dtype=torch.float32)
        k = min(k, len(self))
        if self.index == "faiss":
            if self._faiss is None:
                self._faiss = require_faiss().IndexFlatIP(self.keys.shape[1])
                self._faiss.add(self.keys.numpy())
            sims, rows = self._faiss.search(query.numpy(), k)
            return torch.from_numpy(rows).long(), torch.from_numpy(sims)
        sims = query @ self.keys.T  # (Q, N)
        top = torch.topk(sims, k, dim=1)
        return top.indices, top.values

    def knn_probability(self, query: torch.Tensor) -> torch.Tensor:
        """(Q,) probability of the positive class: softmax(similarity / temperature)-weighted vote of the top
        `neighbours` labels."""
        if not len(self):
            raise PipelineError("the memory is empty: build it (dvc repro memory) or add memes")
        rows, sims = self.neighbours(query, self.top_k)
        votes = torch.softmax(sims / self.temperature, dim=1)
        return (votes * (self.labels[rows] == self.positive).float()).sum(dim=1)

    def save(self, path: str | Path) -> None:
        """Write atomically (temp file, then rename); the same rows give the same bytes."""
        info = json.dumps({"ids": self.ids, **self.settings()}, sort_keys=True)  # one key: a fixed byte order
        data = save({"keys": self.keys.contiguous(), "labels": self.labels.contiguous()}, metadata={"info": info})
        atomic_write_bytes(path, data)

    @classmethod
    def load(cls, path: str | Path) -> LabelledMemory:
        path = Path(path)
        if not path.is_file():
            raise PipelineError(f"{path} not found; build the memory first (dvc repro memory)")
        with safe_open(str(path), framework="pt") as fh:
            info = json.loads((fh.metadata() or {}).get("info", "{}"))
            if "layout" not in info:
                raise PipelineError(f"{path} is not a memory file (no layout in its metadata); rebuild it")
            ids = info.pop("ids")
            memory = cls(**info)
            memory.keys, memory.labels, memory.ids = fh.get_tensor("keys"), fh.get_tensor("labels"), ids
        return memory


def with_added(base: LabelledMemory, added: LabelledMemory) -> LabelledMemory:
    """The base memory and users' additions as one (additions re-weighted to the base's layout; an added id
    that is also in the base replaces it)."""
    if added.classes != base.classes:
        raise PipelineError(f"the added memes are labelled with classes {added.classes}, the memory's are "
                            f"{base.classes}; remove them (python -m Step_5.memory remove) and add them again")
    merged = base.copy()
    merged.add(added.ids, relayout(added.keys, added.layout, base.layout), added.labels)
    return merged


def open_memory(folder: str | Path, classes: list[str] | None = None, modalities: list[str] | None = None,
                added: str | Path | None = None) -> LabelledMemory:
    """The base memory of `folder` (memory.safetensors) merged with the added memes (`added`, default: the file
    recorded at build time, when it exists); checked against a model's classes and modalities when given."""
    base = LabelledMemory.load(Path(folder) / "memory.safetensors")
    if classes is not None and list(classes) != base.classes:
        raise PipelineError(f"{folder} holds labels of classes {base.classes}, the model predicts {list(classes)}; "
                            "rebuild the memory (dvc repro memory)")
    missing = [m for m, _, _ in base.layout if modalities is not None and m not in modalities]
    if missing:
        raise PipelineError(f"{folder} keys memes by {missing}, which this model does not read; use a model "
                            "that fuses them or set memory.modalities and rebuild (dvc repro memory)")
    added = Path(added or base.notes.get("added", ""))
    if added.name and added.is_file():
        return with_added(base, LabelledMemory.load(added))
    return base


def explain_with_memory(memory: LabelledMemory, features: dict[str, torch.Tensor], head_probs: torch.Tensor,
                        modalities: list[str], top: int = 3) -> list[dict]:
    """Per meme {'memory': {'probability', 'knn_probability', 'head_probability', 'neighbours': [{'id', 'label',
    'similarity'}, ...]}}: the combined positive-class probability and the `top` nearest labelled memes.

    Args:
        features: the Predictor's fusion inputs: '<modality>' (B, D_m) expert features and 'mask' (B, M), a
            modality's presence in the order of `modalities`.
        head_probs: (B, C) the head's class probabilities.
    """
    present = {m: features["mask"][:, i] for i, m in enumerate(modalities)}
    keys = memory_keys(features, present, memory.layout)  # (B, D)
    p_head = head_probs[:, memory.positive].float().cpu()
    if not len(memory):
        return [{"memory": {"probability": round(float(p), 5), "head_probability": round(float(p), 5),
                            "knn_probability": None, "neighbours": []}} for p in p_head]
    p_knn = memory.knn_probability(keys)
    combined = combine(p_head, p_knn, memory.weight)
    rows, sims = memory.neighbours(keys, top)
    return [{"memory": {"probability": round(float(combined[i]), 5), "head_probability": round(float(p_head[i]), 5),
                        "knn_probability": round(float(p_knn[i]), 5),
                        "neighbours": [{"id": memory.ids[r], "label": memory.classes[int(memory.labels[r])],
                                        "similarity": round(float(s), 4)} for r, s in zip(rows[i].tolist(), sims[i])]}}
            for i in range(len(keys))]
