"""Inference on the default data (needs data/shards from `make run`): frozen-feature extraction now vs before,
each expert's input path alone, every runtime x precision, and adaptive-depth (DACT) text inference."""
from __future__ import annotations

import torch

from bench.common import ROOT, detected_device, timed
from Step_3.reader import ShardReader

ENCODER_SPLITS = ("val", "test_seen", "test_unseen")  # 1,748 memes of the default data


def pil_image(raw: dict):
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
                "true_label": int(sample["meta"].get("true_label", -1)), "image": per_image(pil_image(raw))}

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
    from Step_4.context import ExpertContext
    from Step_4.features.batches import shard_batches
    from Step_4.features.passes import extract_splits
    from Step_4.features.tensors import extract
    from Step_4.registry import create_expert
    from Step_4.text.config import TextExpertConfig
    from Step_4.vision.config import VisionExpertConfig

    shards = ROOT / "data" / "shards"
    if not (shards / "meta.json").is_file():
        results["encoders"] = {"skipped": "no data/shards: run `make run` first"}
        return
    device = detected_device()
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

        old, t_old = timed(before)
        new, t_new = timed(now)
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
    torchvision into channels-last pixels). On a GPU this is what bounds the stages (docs/gpus-and-scaling.md), so its
    per-core rate is what more workers multiply."""
    import webdataset as wds
    from torchvision.transforms.functional import pil_to_tensor

    from Step_3.reader import decode_without_image
    from Step_4.features.batches import expert_inputs, shard_batches

    to_inputs, collate = expert_inputs({kind: encoder}, train=False, meta=reader.meta)

    def decoded_before(raw: dict) -> dict:
        sample = decode_without_image(raw)  # text, meta and the series, as the loader before decoded them
        if kind == "vision":
            sample["image"] = pil_to_tensor(pil_image(raw).convert("RGB")).contiguous()
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

    count, t_before = timed(lambda: run(True))
    _, t_now = timed(lambda: run(False))
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
    from Step_4.context import ExpertContext
    from Step_4.features.passes import extract_splits
    from Step_4.registry import create_expert
    from Step_4.text.config import TextExpertConfig
    from Step_4.vision.config import VisionExpertConfig

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

            features, seconds = timed(embed)
            reference = features if reference is None else reference
            cosine = torch.nn.functional.cosine_similarity(features, reference, dim=1).min().item()
            table[f"{kind} {name} {precision}"] = {"per_s": round(len(features) / seconds, 1),
                                                   "max_abs_diff": round((features - reference).abs().max().item(), 6),
                                                   "min_cosine": round(cosine, 6)}
    results["runtimes"] = table


def bench_dact(data: dict, results: dict) -> None:
    """Text inference at the default λ: DACT halting per meme vs the full-depth text encoder, batch 1 and 64, over
    the default data's test_seen texts (needs data/shards from `make run`). The units are trained here as the
    text stage trains them (frozen backbone, the first seed); times cover the encoder forward of tokenised
    batches (tokenising costs the same either way)."""
    import dataclasses

    from core.params import section
    from Step_4.context import ExpertContext
    from Step_4.text import plugin as text_plugin
    from Step_4.text.config import TextExpertConfig
    from Step_4.text.dact_training import train_dact

    shards = ROOT / "data" / "shards"
    if not (shards / "meta.json").is_file():
        results["dact"] = {"skipped": "no data/shards: run `make run` first"}
        return
    cfg = section(TextExpertConfig, "text_expert", ROOT / "params.yaml")
    cfg = dataclasses.replace(cfg, adaptive="dact", device="cpu", train=cfg.train.for_seed(cfg.train.seeds[0]),
                              dact=dataclasses.replace(cfg.dact, truncation_baselines=False))
    ctx = ExpertContext(reader=ShardReader(shards), device="cpu", feature_cache=data["work"] / "dact_states")
    encoder = train_dact(cfg, ctx, text_plugin.build).expert.encoder.eval()
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
            return min(timed(lambda: [fn(b) for b in inputs])[1] for _ in range(repeats))

    with torch.inference_mode():
        layers = torch.cat([adaptive(b).layers_used for b in batches]).float().mean().item()
    for name, inputs in (("batch1", singles), ("batch64", batches)):
        t_full, t_dact = seconds(full, inputs), seconds(adaptive, inputs)
        count = sum(len(b["input_ids"]) for b in inputs)
        results["ratios"][f"dact_speedup_{name}"] = round(t_full / t_dact, 2)
        results["throughput"][f"text_full_depth_{name}_texts_per_s"] = count / t_full
        results["throughput"][f"text_dact_{name}_texts_per_s"] = count / t_dact
    results["dact"] = {"lambda": cfg.dact.lam, "avg_layers_test_seen": round(layers, 2), "layers": encoder.n_layers}
