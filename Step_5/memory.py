"""The few-shot labelled memory: build its base from the embeddings cache, add or remove memes, list it.

The base (models/memory/, a DVC output) holds the labelled rows of memory.splits (never an evaluation split).
Users' additions live in memory.added (default memory/added.safetensors, outside DVC and git), merged with the
base at query time: rebuilding the base keeps them and adding never dirties DVC. Added memes are keyed through the
model's own experts (OCR as predict reads it) and stored unweighted, so a change of memory.modalities weights
re-weights them instead of losing them.

Examples:
  python -m Step_5.memory build --embeddings data/embeddings --out models/memory
  python -m Step_5.memory add --model models/mm_fusion/transformer --label abuse_hate new1.jpg new2.jpg
  python -m Step_5.memory remove 3f2a...e1
  python -m Step_5.memory list
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import torch

from core.cli import run_cli
from core.errors import PipelineError
from core.files import atomic_dir, file_sha256, read_json, write_json
from core.params import PARAMS_FILE, section
from Step_2.images import BadImage, read_image
from Step_2.tesseract import read_texts
from Step_3.taxonomy import TaxonomyConfig
from Step_4.engine import to_device
from Step_4.features.batches import presence_mask
from Step_5.memory_config import MemoryConfig
from Step_5.memory_store import LabelledMemory, embedding_keys, memory_keys
from Step_5.predict import Predictor, expand_paths


def build_base(embeddings: Path, cfg: MemoryConfig, taxonomy: TaxonomyConfig) -> tuple[LabelledMemory, dict]:
    """The base memory from the labelled rows of cfg.splits, and its rows per split."""
    memory, rows = None, {}
    for split in cfg.splits:
        part = embedding_keys(embeddings, split, cfg.modalities, labelled=True)
        if part["n_classes"] != len(taxonomy.classes):
            raise PipelineError(f"{embeddings}/{split}: the experts predict {part['n_classes']} classes, the taxonomy "
                                f"has {len(taxonomy.classes)}; rerun the expert stages (dvc repro)")
        if memory is None:
            memory = LabelledMemory(part["layout"], classes=taxonomy.classes,
                                    positive=taxonomy.classes.index(taxonomy.positive), neighbours=cfg.neighbours,
                                    temperature=cfg.temperature, weight=cfg.weight, index=cfg.index,
                                    notes={"added": cfg.added, "splits": cfg.splits})
        memory.add(part["ids"], part["keys"], part["labels"])
        rows[split] = len(part["ids"])
    return memory, rows


def build(args: argparse.Namespace) -> None:
    cfg, taxonomy = section(MemoryConfig, "memory", args.params), section(TaxonomyConfig, "taxonomy", args.params)
    memory, rows = build_base(Path(args.embeddings), cfg, taxonomy)
    counts = Counter(memory.classes[i] for i in memory.labels.tolist())
    with atomic_dir(args.out) as tmp:
        memory.save(tmp / "memory.safetensors")
        write_json(tmp / "memory.json", {
            "modalities": cfg.modalities, "layout": memory.layout, "splits": cfg.splits, "rows_per_split": rows,
            "count_per_class": {c: counts.get(c, 0) for c in memory.classes}, "classes": memory.classes,
            "positive": memory.positive, "neighbours": cfg.neighbours, "temperature": cfg.temperature,
            "weight": cfg.weight, "combine": cfg.combine, "index": cfg.index, "added": cfg.added})
    print(f"memory: {len(memory)} labelled memes from {', '.join(cfg.splits)} ({dict(counts)}) -> {args.out}")


@torch.no_grad()
def image_features(predictor: Predictor, paths: list[Path], text: str | None = None) -> tuple[dict, dict, list]:
    """The Predictor's expert features {modality: (N, D_m)} for image files, their presence {modality: (N,)} and
    the texts read (OCR with the model's settings, or `text` for every image); an unreadable file fails."""
    transform, collate = predictor.inputs
    feats, present, texts = {m: [] for m in predictor.modalities}, {m: [] for m in predictor.modalities}, []
    for start in range(0, len(paths), predictor.batch_size):
        chunk, images = paths[start:start + predictor.batch_size], []
        for path in chunk:
            try:
                images.append(read_image(path)[1])
            except BadImage as err:
                raise PipelineError(f"{path}: cannot read image ({err}); nothing was added") from None
        read = [text] * len(images) if text is not None else [t for t, _ in read_texts(images, predictor.ocr)]
        samples = [{"id": str(p), "image": img, "text": t, "meta": {"label": -1, "tabular": {}}, "series": None}
                   for p, img, t in zip(chunk, images, read)]
        batch = to_device(collate([transform(s) for s in samples]), predictor.device)
        mask = presence_mask(batch, predictor.modalities).cpu()
        for i, m in enumerate(predictor.modalities):
            feats[m].append(predictor.experts[m].forward_features(batch).float().cpu())
            present[m].append(mask[:, i])
        texts += read
    return {m: torch.cat(v) for m, v in feats.items()}, {m: torch.cat(v) for m, v in present.items()}, texts


def expert_hashes(predictor: Predictor) -> dict[str, str]:
    """sha256 of each expert's weights: memes keyed by other weights must not mix in one file."""
    return {m: file_sha256(Path(folder) / "model.safetensors") for m, folder in predictor.info["experts"].items()
            if m in predictor.modalities and (Path(folder) / "model.safetensors").is_file()}


def open_added(path: Path, classes: list[str] | None = None, positive: int = -1, layout=None,
               notes: dict | None = None) -> LabelledMemory:
    """The added memes' file, or an empty one of that layout (classes, positive, layout, notes needed then)."""
    if path.is_file():
        return LabelledMemory.load(path)
    if layout is None:
        raise PipelineError(f"{path} not found: no memes were added yet (python -m Step_5.memory add)")
    return LabelledMemory(layout, classes=classes, positive=positive % len(classes), notes=notes)


def add(args: argparse.Namespace) -> None:
    predictor = Predictor(args.model, device=args.device)
    if args.label not in predictor.classes:
        raise PipelineError(f"--label {args.label!r} is not one of the model's classes: {', '.join(predictor.classes)}")
    paths = expand_paths(args.paths)
    if not paths:
        raise PipelineError(f"no image files found in {args.paths}")
    ids = args.ids or [file_sha256(p) for p in paths]
    if len(ids) != len(paths):
        raise PipelineError(f"--ids gives {len(ids)} ids for {len(paths)} images; give one per image or none")
    feats, present, texts = image_features(predictor, paths, args.text)
    layout = [(m, feats[m].shape[1], 1.0) for m in predictor.modalities]  # unweighted: the base re-weights
    added_path = Path(args.added or section(MemoryConfig, "memory", args.params).added)
    hashes = expert_hashes(predictor)
    added = open_added(added_path, predictor.classes, predictor.info.get("positive_index", -1), layout,
                       {"experts": hashes})
    if added.notes.get("experts", hashes) != hashes or added.classes != predictor.classes:
        raise PipelineError(f"{added_path} holds memes keyed by other experts or classes than {args.model}'s; "
                            "remove them (python -m Step_5.memory remove) or pass another --added file")
    keys = memory_keys(feats, present, layout)
    added.add(ids, keys, [predictor.classes.index(args.label)] * len(ids))
    added.save(added_path)
    for meme_id, path, text in zip(ids, paths, texts):
        print(json.dumps({"id": meme_id, "path": str(path), "label": args.label, "text": text}, ensure_ascii=False))
    print(f"memory: {len(ids)} added, {len(added)} in {added_path}")


def remove(args: argparse.Namespace) -> None:
    path = Path(args.added or section(MemoryConfig, "memory", args.params).added)
    added = open_added(path)
    held = set(added.ids)
    unknown = [i for i in args.ids if i not in held]
    if unknown:
        raise PipelineError(f"{path} holds no meme {', '.join(unknown)} (nothing removed); `python -m Step_5.memory "
                            "list` shows the added ids (base memes leave with their split: memory.splits)")
    added.remove(args.ids)
    added.save(path)
    print(f"memory: {len(args.ids)} removed, {len(added)} left in {path}")


def list_memory(args: argparse.Namespace) -> None:
    info_path = Path(args.memory) / "memory.json"
    if info_path.is_file():
        info = read_json(info_path)
        print(f"base {args.memory}: {sum(info['count_per_class'].values())} memes from {', '.join(info['splits'])} "
              f"{info['count_per_class']}")
    else:
        print(f"base {args.memory}: not built (dvc repro memory)")
    path = Path(args.added or section(MemoryConfig, "memory", args.params).added)
    if not path.is_file():
        print(f"added {path}: none")
        return
    added = LabelledMemory.load(path)
    labels = [added.classes[i] for i in added.labels.tolist()]
    print(f"added {path}: {len(added)} memes {dict(Counter(labels))}")
    for meme_id, label in zip(added.ids, labels):
        print(f"  {meme_id}  {label}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m Step_5.memory", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    specs = {"build": (build, "build the base memory from the embeddings cache (the DVC stage `memory`)"),
             "add": (add, "add labelled images to the users' memory (keys through the model's experts, OCR included)"),
             "remove": (remove, "remove added memes by id"),
             "list": (list_memory, "counts of the base and the added memes, and the added ids")}
    sub = {}
    for name, (run, text) in specs.items():
        sub[name] = commands.add_parser(name, help=text, description=text)
        sub[name].set_defaults(run=run)
        sub[name].add_argument("--params", default=PARAMS_FILE, help="params file (its memory section)")
    sub["build"].add_argument("--embeddings", default="data/embeddings", help="expert embeddings root")
    sub["build"].add_argument("--out", default="models/memory", help="output folder (memory.safetensors, memory.json)")
    sub["add"].add_argument("paths", nargs="+", help="image files or folders")
    sub["add"].add_argument("--model", required=True, help="fusion model folder, e.g. models/mm_fusion/transformer")
    sub["add"].add_argument("--label", required=True, help="one of the model's classes, e.g. abuse_hate")
    sub["add"].add_argument("--text", default=None, help="use this text instead of OCR (for every image)")
    sub["add"].add_argument("--id", dest="ids", action="append", default=None,
                            help="the id of an image, once per image in order (default: the file's sha256)")
    sub["add"].add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    sub["remove"].add_argument("ids", nargs="+", help="ids of added memes (see `list`)")
    sub["list"].add_argument("--memory", default="models/memory", help="base memory folder")
    for name in ("add", "remove", "list"):
        sub[name].add_argument("--added", default=None, help="added memes file (default: params memory.added)")
    return top


def main() -> None:
    args = parser().parse_args()
    args.run(args)


if __name__ == "__main__":
    run_cli(main)
