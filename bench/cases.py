"""The benchmark cases; each fills `results` (ratios, throughput, dvc)."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import torch

from core.params import build
from Step_1.config import PrepareConfig
from Step_1.prepare import prepare
from Step_2.cache import OcrCache
from Step_2.images import DEFAULT_MAX_PIXELS
from Step_2.ocr import OcrConfig, build_manifest, run_ocr
from Step_3.reader import ShardReader, decode_sample, shard_urls
from Step_3.shard import ShardConfig, build_samples, write_shards
from Step_3.tar_stream import group_samples
from Step_3.splits import SPLITS, assign_splits, link_groups
from Step_3.tabular import TabularEncoder, fit_schema
from Step_3.taxonomy import TaxonomyConfig, build_taxonomy
from core.files import read_jsonl

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def build_dataset(work: Path, count: int) -> dict:
    """Generate `count` memes, build the manifest; shards are written by bench_shards / on demand."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cfg = build(PrepareConfig, {"workers": os.cpu_count() or 1, "sources": [{
        "name": "synthetic", "kind": "synthetic", "label_map": {"hateful": "abuse_hate", "benign": "benign"},
        "options": {"count": count, "seed": 99}}]}, where="bench")
    prepare(cfg, work / "prepared")
    records = read_jsonl(work / "prepared" / "records.jsonl")
    manifest, _ = build_manifest(records)
    return {"work": work, "records": records, "manifest": manifest}


def bench_ocr(data: dict, results: dict) -> None:
    manifest, work = data["manifest"], data["work"]
    cores = os.cpu_count() or 1
    _, one = _timed(lambda: run_ocr(manifest, OcrConfig(workers=1), OcrCache(work / "ocr1" / "c.jsonl")))
    (rows, _), many = _timed(lambda: run_ocr(manifest, OcrConfig(workers=cores), OcrCache(work / "ocrN" / "c.jsonl")))
    _, cached = _timed(lambda: run_ocr(manifest, OcrConfig(workers=cores), OcrCache(work / "ocrN" / "c.jsonl")))
    _, manifest_again = _timed(lambda: build_manifest(data["records"]))
    data["ocr"] = rows
    results["ratios"]["ocr_parallel_speedup"] = round(one / many, 2)
    results["ratios"]["ocr_cache_speedup"] = round(many / cached, 1)
    results["ratios"]["ocr_stage_rerun_speedup"] = round((many + manifest_again) / (cached + manifest_again), 1)
    results["throughput"]["ocr_images_per_s_1_process"] = len(manifest) / one
    results["throughput"][f"ocr_images_per_s_{cores}_processes"] = len(manifest) / many


def _ensure_shards(data: dict) -> Path:
    if "shards" in data:
        return data["shards"]
    if "ocr" not in data:
        data["ocr"], _ = run_ocr(data["manifest"], OcrConfig(workers=os.cpu_count() or 1),
                                 OcrCache(data["work"] / "ocrN" / "c.jsonl"))
    taxonomy = build_taxonomy(TaxonomyConfig(classes=["benign", "abuse_hate"], positive="abuse_hate"),
                              [{"name": "synthetic", "label_map": {"hateful": "abuse_hate", "benign": "benign"}}])
    cfg = ShardConfig(maxcount=64)
    rows, labels = build_samples(data["manifest"], data["ocr"], taxonomy, cfg)
    splits = assign_splits(rows, labels, cfg.fractions, cfg.seed, link_groups(rows))
    data.update(rows=rows, labels=labels, splits=splits, shard_cfg=cfg)
    out = data["work"] / "shards"
    shard_sizes = write_shards(rows, labels, splits, out, cfg, DEFAULT_MAX_PIXELS)
    train = [r for r, s in zip(rows, splits) if s == "train"]
    counts = {s: Counter("abuse_hate" if y == 1 else "benign" for y, sp in zip(labels, splits) if sp == s) for s in SPLITS}
    data["meta"] = {"classes": ["benign", "abuse_hate"], "positive_index": 1, "text_source": "ocr",
                    "counts": {s: dict(c) for s, c in counts.items()},
                    "sizes": {s: sum(c.values()) for s, c in counts.items()},
                    "tabular": fit_schema(["account_age_days", "followers", "prior_reports", "hour_posted", "hashtags"],
                                          ["platform", "verified", "region"], train),
                    "shard_sizes": shard_sizes}
    data["shards"] = out
    return out


def bench_shards(data: dict, results: dict) -> None:
    """Reader vs tarfile over all splits: raw bytes, then decoded to image tensors."""
    shard_dir = _ensure_shards(data)
    urls = [u for s in SPLITS for u in shard_urls(shard_dir, s)]

    def tar_bytes():
        n = 0
        for url in urls:
            with tarfile.open(url) as tar:
                for member in tar:
                    n += len(tar.extractfile(member).read())
        return n

    def tar_decoded():  # members read by tarfile, grouped into samples as the reader groups them
        for url in urls:
            with tarfile.open(url) as tar:
                for sample in group_samples(((m.name, tar.extractfile(m).read()) for m in tar), url):
                    decode_sample(sample)

    def reader(decode: bool):
        for split in SPLITS:
            loader = ShardReader(shard_dir, data["meta"]).loader(
                split, transform=(lambda s: s["image"]) if decode else (lambda s: s["__key__"]),
                collate=list, batch_size=64, raw=not decode)
            for _ in loader:
                pass

    best = lambda fn: min(_timed(fn)[1] for _ in range(3))  # noqa: E731
    raw_tar, raw_reader = best(tar_bytes), best(lambda: reader(False))
    dec_tar, dec_reader = best(tar_decoded), best(lambda: reader(True))
    n = len(data["manifest"])
    results["ratios"]["reader_vs_tar_bytes"] = round(raw_tar / raw_reader, 2)
    results["ratios"]["reader_vs_tar_decoded"] = round(dec_tar / dec_reader, 2)
    results["throughput"]["reader_samples_per_s_bytes"] = n / raw_reader
    results["throughput"]["reader_samples_per_s_decoded"] = n / dec_reader


def _experts(data: dict):
    if "experts" in data:
        return data["experts"]
    from Step_4.expert import Expert
    from Step_4.tabular_encoder import TabularFeatureEncoder
    from Step_4.tabular_model import FTConfig
    from Step_4.text_encoder import TextEncoder
    from Step_4.vision_encoder import VisionEncoder

    _ensure_shards(data)
    tab = TabularEncoder(data["meta"]["tabular"])
    torch.manual_seed(0)
    experts = {
        "text": Expert(modality="text", encoder=TextEncoder(max_length=48), n_classes=2, head_hidden=256, dropout=0.2),
        "vision": Expert(modality="vision", encoder=VisionEncoder(), n_classes=2, head_hidden=256, dropout=0.2),
        "tabular": Expert(modality="tabular", encoder=TabularFeatureEncoder(config=FTConfig(
            n_numeric=tab.n_numeric, cardinalities=tab.cardinalities)), n_classes=2, head_hidden=64, dropout=0.1),
    }
    for e in experts.values():
        e.eval()
        for p in e.parameters():
            p.requires_grad = False
    data["experts"] = experts
    return experts


def _loader(data: dict, experts: dict, device: str):
    """Train-split batches with the inputs of the given experts."""
    from Step_4.inputs import shard_batches

    encoders = {m: e.encoder for m, e in experts.items()}
    return shard_batches(ShardReader(data["shards"], data["meta"]), encoders, "train", train=False, batch_size=64,
                         device=device)


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def bench_experts(data: dict, results: dict) -> None:
    """Embedding extraction and head-training throughput for text and vision on the detected device."""
    from Step_4.config import TrainConfig
    from Step_4.embeddings import extract, tensor_batches
    from Step_4.engine import classification, fit

    experts, device = _experts(data), _device()
    for m in ("text", "vision"):
        emb = extract(experts[m], _loader(data, {m: experts[m]}, device), device)
        results["throughput"][f"{m}_embed_samples_per_s_{device}"] = emb["samples_per_s"]
        head = experts[m].head
        for p in head.parameters():
            p.requires_grad = True
        train = {"features": emb["features"], "label": emb["labels"]}
        cfg = TrainConfig(epochs=3)
        objective = classification(cfg, [1, 1], lambda: tensor_batches(train, 512, shuffle=False), positive=1,
                                   device=device)
        res = fit(experts[m], objective, train_batches=lambda e: tensor_batches(train, 64, shuffle=True, epoch=e),
                  steps_per_epoch=math.ceil(len(train["label"]) / 64), cfg=cfg, device=device, desc=f"bench {m} head")
        results["throughput"][f"{m}_head_train_samples_per_s_{device}"] = res.samples_per_s


def bench_fusion(data: dict, results: dict) -> None:
    """One training epoch of the gated fusion head: cached embeddings vs re-encoding every batch."""
    from Step_4.embeddings import extract, tensor_batches
    from Step_4.inputs import presence_mask
    from Step_5.finetune import EndToEndFusion
    from Step_5.models import FusionDims, GatedFusion

    experts, device = _experts(data), _device()
    modalities = ["text", "vision", "tabular"]
    cached = {}
    for m in modalities:
        emb = extract(experts[m], _loader(data, {m: experts[m]}, device), device)
        cached[m], cached[f"{m}_logits"], cached["label"] = emb["features"], emb["logits"], emb["labels"]
        cached["mask"] = torch.ones(len(emb["labels"]), 3, dtype=torch.bool)
    dims = FusionDims(inputs={m: cached[m].shape[1] for m in modalities}, n_classes=2)

    def epoch(batches, model):
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        model.train()
        for batch in batches:
            batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            loss = torch.nn.functional.cross_entropy(model(batch), batch["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()

    head = GatedFusion(dims=dims).to(device)
    _, t_cached = _timed(lambda: epoch(tensor_batches(cached, 64, shuffle=True), head))
    e2e = EndToEndFusion(experts=experts, head=GatedFusion(dims=dims), modalities=modalities).to(device)
    loader = _loader(data, experts, device)
    _, t_encode = _timed(lambda: epoch(({**b, "mask": presence_mask(b, modalities)} for b in loader), e2e))
    results["ratios"]["fusion_cached_speedup"] = round(t_encode / t_cached, 1)
    results["throughput"]["fusion_epoch_cached_samples_per_s"] = len(cached["label"]) / t_cached
    results["throughput"]["fusion_epoch_reencode_samples_per_s"] = len(cached["label"]) / t_encode


def bench_dact(data: dict, results: dict) -> None:
    """Text inference at the default λ: DACT halting per meme vs the full-depth text encoder, batch 1 and 64, over
    the default data's test_seen texts (needs data/shards from `make run`). The units are trained here as the
    text stage trains them (frozen backbone, the first seed); times cover the encoder forward of tokenised
    batches (tokenising costs the same either way)."""
    import dataclasses

    from core.params import section
    from Step_4.config import TextExpertConfig
    from Step_4.dact_expert import train_dact
    from Step_4.recipes import ExpertContext

    shards = ROOT / "data" / "shards"
    if not (shards / "meta.json").is_file():
        results["dact"] = {"skipped": "no data/shards: run `make run` first"}
        return
    cfg = section(TextExpertConfig, "text_expert", ROOT / "params.yaml")
    cfg = dataclasses.replace(cfg, adaptive="dact", device="cpu", train=cfg.train.for_seed(cfg.train.seeds[0]),
                              dact=dataclasses.replace(cfg.dact, truncation_baselines=False))
    ctx = ExpertContext(reader=ShardReader(shards), device="cpu", feature_cache=data["work"] / "dact_states")
    encoder = train_dact(cfg, ctx).expert.encoder.eval()
    texts = [raw["txt"].decode() for raw in ctx.reader.samples("test_seen", raw=True)]
    singles = [encoder.text.tokenize([t]) for t in texts[:300]]
    batches = [encoder.text.tokenize(texts[i:i + 64]) for i in range(0, len(texts), 64)]

    def full(batch):
        return encoder.text(batch["input_ids"], batch["attention_mask"])

    def adaptive(batch):
        return encoder.run(batch, halting="sample")

    def seconds(fn, inputs, repeats=5):
        with torch.inference_mode():
            fn(inputs[0])  # warm-up
            return min(_timed(lambda: [fn(b) for b in inputs])[1] for _ in range(repeats))

    with torch.inference_mode():
        layers = torch.cat([adaptive(b).layers_used for b in batches]).float().mean().item()
    for name, inputs in (("batch1", singles), ("batch64", batches)):
        t_full, t_dact = seconds(full, inputs), seconds(adaptive, inputs)
        count = sum(len(b["input_ids"]) for b in inputs)
        results["ratios"][f"dact_speedup_{name}"] = round(t_full / t_dact, 2)
        results["throughput"][f"text_full_depth_{name}_texts_per_s"] = count / t_full
        results["throughput"][f"text_dact_{name}_texts_per_s"] = count / t_dact
    results["dact"] = {"lambda": cfg.dact.lam, "avg_layers_test_seen": round(layers, 2), "layers": encoder.n_layers}


def _shard_subset(data: dict, out: Path, keep: list[int]) -> ShardReader:
    """Shards (and a meta.json) of the rows at `keep`, for the incremental-embedding case."""
    from Step_3.shard import shard_pattern

    rows, labels, splits = ([data[k][i] for i in keep] for k in ("rows", "labels", "splits"))
    sizes = write_shards(rows, labels, splits, out, data["shard_cfg"], DEFAULT_MAX_PIXELS)
    meta = {**data["meta"], "files": {s: shard_pattern(s, len(n)) for s, n in sizes.items()}, "shard_sizes": sizes,
            "sizes": {s: sum(n) for s, n in sizes.items()}}
    return ShardReader(out, meta)


def bench_embed_cache(data: dict, results: dict) -> None:
    """Text + vision features of every split: a full run without cache vs adding 1 % new memes to a dataset
    whose features are cached (content hashing, cache reads, the encoder on the new memes only)."""
    from types import SimpleNamespace

    from Step_4.feature_cache import FeatureCache, fingerprint
    from Step_4.recipes import ExpertContext, embed_splits

    _ensure_shards(data)
    experts, device, work = _experts(data), _device(), data["work"]
    n = len(data["rows"])
    new = set(range(0, n, 100))  # 1 % of the memes arrive later
    older = _shard_subset(data, work / "shards_99", [i for i in range(n) if i not in new])
    everything = _shard_subset(data, work / "shards_100", list(range(n)))
    # PyTorch here: this case measures the cache; an exported runtime's one-off compile would blur the ratio
    cfg = SimpleNamespace(embed_batch_size=64, num_workers=0, runtime="torch", precision="fp32")

    def embed(reader, cache_dir):
        for m in ("text", "vision"):
            cache = FeatureCache(cache_dir / m, fingerprint(experts[m].encoder)) if cache_dir else None
            embed_splits(experts[m], cfg, ExpertContext(reader=reader, device=device), cache)

    _, full = _timed(lambda: embed(everything, None))
    embed(older, work / "feature_cache")
    _, incremental = _timed(lambda: embed(everything, work / "feature_cache"))
    _, unchanged = _timed(lambda: embed(everything, work / "feature_cache"))
    results["ratios"]["embed_cache_add_1pct_speedup"] = round(full / incremental, 1)
    results["ratios"]["embed_cache_unchanged_speedup"] = round(full / unchanged, 1)
    results["throughput"]["embed_text_vision_samples_per_s_uncached"] = n / full


ENCODER_SPLITS = ("val", "test_seen", "test_unseen")  # 1,748 memes of the default data


def _pil_image(raw: dict):
    """The image member of a raw shard sample, opened by PIL (how the paths before the speed work decoded)."""
    import io

    from PIL import Image

    from Step_3.reader import IMAGE_KEYS

    return Image.open(io.BytesIO(next(raw[k] for k in IMAGE_KEYS if k in raw)))


def _legacy_vision_batches(reader: ShardReader, encoder, split: str, batch_size: int):
    """The extraction input path before the speed work: per image PIL decode + PIL resize + ToTensor +
    Normalize, float batches (the encoder takes normalised floats as they are)."""
    import torchvision.transforms as T

    from Step_3.reader import decode_without_image

    _, height, width = encoder.data_config["input_size"]
    per_image = T.Compose([T.Lambda(lambda im: im.convert("RGB")),
                           T.Resize((height, width), interpolation=T.InterpolationMode(encoder.data_config["interpolation"])),
                           T.ToTensor(), T.Normalize(encoder.data_config["mean"], encoder.data_config["std"])])

    def transform(raw: dict) -> dict:
        sample = decode_without_image(raw)
        return {"id": sample["id"], "label": int(sample["meta"]["label"]),
                "true_label": int(sample["meta"].get("true_label", -1)), "image": per_image(_pil_image(raw))}

    def collate(rows: list[dict]) -> dict:
        return {"id": [r["id"] for r in rows], "label": torch.tensor([r["label"] for r in rows]),
                "true_label": torch.tensor([r["true_label"] for r in rows]),
                "image": torch.stack([r["image"] for r in rows]), "vision_present": torch.ones(len(rows), dtype=torch.bool)}

    return reader.loader(split, transform=transform, collate=collate, batch_size=batch_size, raw=True)


def bench_encoders(data: dict, results: dict) -> None:
    """Frozen-feature extraction, the stage's path (params.yaml: runtime, precision, length-sorted text
    batches, uint8 images) vs the path before it (PyTorch fp32, per-image float preprocessing, text in shard
    order), in the same run on the default data's val and test splits (needs data/shards from `make run`).
    Times cover reading the shards, decoding, preprocessing and the encoder, as in the stage."""
    import dataclasses

    from core.params import section
    from Step_4 import runtime
    from Step_4.config import TextExpertConfig, VisionExpertConfig
    from Step_4.embeddings import extract
    from Step_4.inputs import shard_batches
    from Step_4.recipes import ExpertContext, extract_splits
    from Step_4.registry import create_expert

    shards = ROOT / "data" / "shards"
    if not (shards / "meta.json").is_file():
        results["encoders"] = {"skipped": "no data/shards: run `make run` first"}
        return
    device = _device()
    ctx = ExpertContext(reader=ShardReader(shards), device=device)
    report = {}
    for kind, config in (("vision", VisionExpertConfig), ("text", TextExpertConfig)):
        cfg = dataclasses.replace(section(config, f"{kind}_expert", ROOT / "params.yaml"), device=device).for_device(device)
        expert = create_expert(kind, cfg, ctx.meta)
        expert.encoder.freeze(0)

        def before():
            out = []
            for split in ENCODER_SPLITS:
                batches = (_legacy_vision_batches(ctx.reader, expert.encoder, split, cfg.embed_batch_size)
                           if kind == "vision" else
                           shard_batches(ctx.reader, {kind: expert.encoder}, split, train=False,
                                         batch_size=cfg.embed_batch_size, device=device))
                out.append(extract(expert, batches, device)["features"])
            return torch.cat(out)

        def now():
            with runtime.inference(expert.encoder, cfg.runtime, cfg.precision, device):  # compiled once, as in the stage
                data = extract_splits(expert, cfg, ctx, ENCODER_SPLITS)  # one pass, one worker pool, as in the stage
                return torch.cat([data[split]["features"] for split in ENCODER_SPLITS])

        old, t_old = _timed(before)
        new, t_new = _timed(now)
        count = len(new)
        plan = runtime.plan(expert.encoder, cfg.runtime, cfg.precision, device)
        results["ratios"][f"{kind}_extraction_speedup"] = round(t_old / t_new, 2)
        results["throughput"][f"{kind}_extraction_before_per_s_{device}"] = count / t_old
        results["throughput"][f"{kind}_extraction_now_per_s_{device}"] = count / t_new
        cosine = torch.nn.functional.cosine_similarity(new, old, dim=1)
        report[kind] = {**plan, "memes": count, "max_abs_diff": round((new - old).abs().max().item(), 6),
                        "min_cosine": round(cosine.min().item(), 6)}
        _bench_loader(ctx.reader, kind, expert.encoder, cfg.embed_batch_size, results)
    results["encoders"] = report


def _bench_loader(reader: ShardReader, kind: str, encoder, batch_size: int, results: dict) -> None:
    """An expert's input path alone (shards -> the encoder's batches; no encoder), in this process: the path
    before (webdataset's tarfile reader, every member decoded, images through PIL to a contiguous (3,H,W)
    tensor) vs the stage's (Step_3.tar_stream, members the encoder does not read skipped unread, images by
    torchvision into channels-last pixels). On a GPU this is what bounds the stages (README: GPUs), so its
    per-core rate is what more workers multiply."""
    import webdataset as wds
    from torchvision.transforms.functional import pil_to_tensor

    from Step_3.reader import decode_without_image
    from Step_4.inputs import expert_inputs, shard_batches

    to_inputs, collate = expert_inputs({kind: encoder}, train=False, meta=reader.meta)

    def decoded_before(raw: dict) -> dict:
        sample = decode_without_image(raw)  # text, meta and the series, as the loader before decoded them
        if kind == "vision":
            sample["image"] = pil_to_tensor(_pil_image(raw).convert("RGB")).contiguous()
        return sample

    def run(before: bool) -> int:
        count = 0
        for split in ENCODER_SPLITS:
            if before:
                loader = wds.DataPipeline(wds.SimpleShardList(reader.urls(split)), wds.tarfile_to_samples(),
                                          wds.map(decoded_before), wds.map(to_inputs),
                                          wds.batched(batch_size, collation_fn=collate, partial=True))
            else:
                loader = shard_batches(reader, {kind: encoder}, split, train=False, batch_size=batch_size)
            count += sum(len(batch["id"]) for batch in loader)
        return count

    count, t_before = _timed(lambda: run(True))
    _, t_now = _timed(lambda: run(False))
    results["ratios"][f"{kind}_loader_speedup"] = round(t_before / t_now, 2)
    results["throughput"][f"{kind}_loader_before_per_s_1_process"] = count / t_before
    results["throughput"][f"{kind}_loader_now_per_s_1_process"] = count / t_now


RUNTIME_GRID = (("torch", "fp32"), ("openvino", "fp32"), ("onnxruntime", "fp32"), ("torch", "bf16"),
                ("openvino", "bf16"))


def bench_runtimes(data: dict, results: dict) -> None:
    """Every runtime x precision for the vision and text stage paths over all 4,500 default memes (one
    export per configuration, as in the stage): memes/s and the features' distance from torch fp32."""
    import dataclasses

    from core.params import section
    from Step_4 import runtime
    from Step_4.config import TextExpertConfig, VisionExpertConfig
    from Step_4.recipes import ExpertContext, extract_splits
    from Step_4.registry import create_expert

    shards = ROOT / "data" / "shards"
    if not (shards / "meta.json").is_file():
        results["runtimes"] = {"skipped": "no data/shards: run `make run` first"}
        return
    ctx = ExpertContext(reader=ShardReader(shards), device="cpu")
    table = {}
    for kind, config in (("vision", VisionExpertConfig), ("text", TextExpertConfig)):
        cfg = section(config, f"{kind}_expert", ROOT / "params.yaml").for_device("cpu")
        expert = create_expert(kind, cfg, ctx.meta)
        expert.encoder.freeze(0)
        reference = None
        for name, precision in RUNTIME_GRID:
            run = dataclasses.replace(cfg, runtime=name, precision=precision, device="cpu")

            def embed():
                with runtime.inference(expert.encoder, run.runtime, run.precision, "cpu"):
                    data = extract_splits(expert, run, ctx, ctx.splits)
                    return torch.cat([data[split]["features"] for split in ctx.splits])

            features, seconds = _timed(embed)
            reference = features if reference is None else reference
            cosine = torch.nn.functional.cosine_similarity(features, reference, dim=1).min().item()
            table[f"{kind} {name} {precision}"] = {"per_s": round(len(features) / seconds, 1),
                                                   "max_abs_diff": round((features - reference).abs().max().item(), 6),
                                                   "min_cosine": round(cosine, 6)}
    results["runtimes"] = table


SIDE_BY_SIDE = {  # two stage commands (the default pipeline's), outputs redirected to a scratch folder
    "fusion_gated": ["-m", "Step_5.train_fusion", "gated", "--shards", "{R}/data/shards", "--embeddings",
                     "{R}/data/embeddings", "--experts", "{R}/models", "--model", "{W}/fusion", "--metrics-dir",
                     "{W}/fusion_metrics", "--reports-dir", "{W}/fusion_reports", "--params", "{R}/params.yaml"],
    "tabular_expert": ["-m", "Step_4.train_expert", "tabular", "--shards", "{R}/data/shards", "--mfm",
                       "{R}/models/tabular_mfm", "--model", "{W}/tabular", "--embeddings", "{W}/tabular_embeddings",
                       "--metrics-dir", "{W}/tabular_metrics", "--reports-dir", "{W}/tabular_reports",
                       "--params", "{R}/params.yaml"],
}


def _side_by_side(data: dict, results: dict, shared: bool) -> None:
    if not (ROOT / "data" / "embeddings").is_dir() or not (ROOT / "models" / "tabular_mfm").is_dir():
        results["side_by_side"] = {"skipped": "the default pipeline is not built here; run `make run` first"}
        return
    work = (data["work"] / "side_by_side").resolve()  # absolute: each stage runs in its own folder
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIPELINE_JOBS_DIR": str(work / "jobs")}
    if not shared:  # every stage takes every core, as before the stages shared them
        env["PIPELINE_THREADS"] = str(os.cpu_count() or 1)

    def start(name: str, tag: str) -> subprocess.Popen:
        args = [a.replace("{R}", str(ROOT)).replace("{W}", str(work / tag)) for a in SIDE_BY_SIDE[name]]
        (work / tag).mkdir(parents=True, exist_ok=True)
        return subprocess.Popen([sys.executable, *args], cwd=work / tag, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def wait(procs: dict[str, subprocess.Popen], t0: float) -> dict[str, float]:
        done = {}
        while len(done) < len(procs):
            for name, proc in procs.items():
                if name not in done and proc.poll() is not None:
                    if proc.returncode != 0:
                        raise RuntimeError(f"side-by-side: {name} failed ({' '.join(proc.args)})")
                    done[name] = time.perf_counter() - t0
            time.sleep(0.05)
        return done

    alone = {}
    for name in SIDE_BY_SIDE:
        alone.update(wait({name: start(name, f"alone_{name}")}, time.perf_counter()))
    t0 = time.perf_counter()
    together = wait({name: start(name, f"together_{name}") for name in SIDE_BY_SIDE}, t0)
    label = "side_by_side" if shared else "side_by_side_unshared"
    for name in SIDE_BY_SIDE:
        results["ratios"][f"{label}_{name}_slowdown"] = round(together[name] / alone[name], 2)
    results[label] = {"alone_s": {k: round(v, 1) for k, v in alone.items()},
                      "together_s": {k: round(v, 1) for k, v in together.items()}}


def bench_side_by_side(data: dict, results: dict) -> None:
    """Two real stages (fusion gated, tabular expert) alone, then side by side: each one's slowdown
    (target <= 2.5x). Needs the built default pipeline."""
    _side_by_side(data, results, shared=True)


def bench_side_by_side_unshared(data: dict, results: dict) -> None:
    """The same with PIPELINE_THREADS fixed to every core, i.e. the stages not sharing them (as before)."""
    _side_by_side(data, results, shared=False)


CHANGES = {  # one param per step -> the stages that must rerun
    "prepare.workers": ("prepare", 1),
    "ocr.settings.upscale": ("ocr", 1.01),
    "shard.seed": ("shard", 8),
    "vision_expert.head_hidden": ("vision_expert", 255),
    "fusion.gated.temperature": ("fusion@gated", 0.9),
    "evaluate.bootstrap": ("evaluate", 500),
}


def _dvc(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ROOT, capture_output=True, text=True, env=env)


def _dependants() -> dict[str, list[str]]:
    """Stage → the stages downstream of it, from DVC's own graph (edges point to dependencies)."""
    import networkx as nx
    from dvc.repo import Repo

    graph = Repo(str(ROOT)).index.graph
    return {s.addressing: sorted(a.addressing for a in nx.ancestors(graph, s)) for s in graph.nodes}


def _param_readers() -> dict[str, list[str]]:
    """Stage → the params.yaml keys it declares (dvc.yaml `params`)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    return {stage.addressing: [key for dep in stage.deps if isinstance(dep, ParamsDependency) for key in dep.params]
            for stage in Repo(str(ROOT)).index.stages}


def bench_dvc(data: dict, results: dict) -> None:
    """No-op repro time, and what each one-param change invalidates (params.yaml is restored after)."""
    import yaml

    status = _dvc("status", "--quiet")
    if status.returncode != 0:
        results["dvc"] = {"skipped": "the default pipeline is not fully built here; run `make run` first"}
        return
    times = [_timed(lambda: _dvc("repro"))[1] for _ in range(3)]
    results["dvc"] = {"noop_repro_seconds": round(min(times), 2)}
    params_path = ROOT / "params.yaml"
    original = params_path.read_text()
    reruns = {}
    try:
        for key, (_, value) in CHANGES.items():
            params = yaml.safe_load(original)
            node = params
            *parents, leaf = key.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
            params_path.write_text(yaml.safe_dump(params, sort_keys=False))
            out = _dvc("repro", "--dry").stdout
            reruns[key] = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]
    finally:
        params_path.write_text(original)
    downstream, readers = _dependants(), _param_readers()
    checks = {}
    for key, (stage, _) in CHANGES.items():
        # --dry lists the stages whose own deps changed; their dependants rerun once those outputs change.
        # ok: the changed step reruns, and so does every other stage that declares the param (e.g. crossval,
        # which trains the fusions per fold, declares `fusion`), and no stage else
        declared = {name for name, keys in readers.items() if any(key == k or key.startswith(k + ".") for k in keys)}
        checks[key] = {"invalidated": reruns[key], "then_downstream": downstream[stage],
                       "only_that_step_and_dependants": stage in reruns[key] and set(reruns[key]) == declared}
    results["dvc"]["one_param_change"] = checks


def bench_repro(data: dict, results: dict) -> None:
    """The full default pipeline from scratch in a scratch copy: wall seconds per stage."""
    from tools.smoke import make_scratch

    target = data["work"] / "repro"
    make_scratch(target, None)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=target, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    starts, t0 = [], time.perf_counter()
    for line in proc.stdout:
        if line.startswith("Running stage"):
            starts.append((line.split("'")[1], time.perf_counter() - t0))
    proc.wait()
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"dvc repro failed in {target}")
    ends = [t for _, t in starts[1:]] + [total]
    results["repro_stage_seconds"] = {name: round(end - start, 1) for (name, start), end in zip(starts, ends)}
    results["repro_stage_seconds"]["total"] = round(total, 1)
