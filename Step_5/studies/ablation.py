"""What one modality adds: every named fusion method trained over fusion.modalities and over the same list without
`--without` (each seed in fusion.train.seeds, the fusion section's settings otherwise), on the cached embeddings.

Prints one row per method and split (val, test_seen, test_unseen): AUROC mean ± std with and without the
modality, the gain, the seed noise 2·sqrt(std_with² + std_without²) (as Step_5.studies.compare) and whether the gain is
beyond it; writes the same as JSON (--out).

Example (after `dvc repro`):
  python -m Step_5.studies.ablation --without temporal --methods gated transformer concat --out reports/ablation_temporal.json
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from core.cli import run_cli
from core.errors import PipelineError
from core.files import write_json
from core.params import section
from core.seed import pick_device
from Step_3.reader import ShardReader, filled_splits
from Step_3.splits import EVALUATED
from Step_4.scores import summarize, truth_of
from Step_5.config import FusionConfig
from Step_5.data import load_fusion_split
from Step_5.models import FUSIONS, FusionDims, fusion_params
from Step_5.train_fusion import train_seeds


def scores(method: str, modalities: list[str], data: dict, cfg: FusionConfig, meta: dict, device: str) -> dict:
    """{split: {'auroc', 'auroc_std'}} of `method` over `modalities`, mean and std over the seeds."""
    fused = {s: {k: v for k, v in d.items() if k in ("id", "label", "true_label") or k.split("_logits")[0] in modalities}
             for s, d in data.items()}
    for s, d in data.items():  # the presence mask of the kept modalities, in their fixed order
        fused[s]["mask"] = d["mask"][:, [cfg.modalities.index(m) for m in modalities]]
    dims = FusionDims(inputs={m: data["train"][m].shape[1] for m in modalities}, n_classes=len(meta["classes"]))
    params = fusion_params(method, getattr(cfg, method))
    _, _, runs = train_seeds(method, params, dims, fused, cfg, meta, device, None)
    summary = summarize(runs, truth_of(fused, "label", "true_label"), meta["positive_index"], cfg.train.seeds)
    return {s: {"auroc": summary[s]["auroc"], "auroc_std": summary[s].get("auroc_std", 0.0)}
            for s in EVALUATED if s in summary}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.studies.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (section fusion)")
    parser.add_argument("--without", required=True, help="the modality to leave out, e.g. temporal")
    parser.add_argument("--methods", nargs="+", default=["gated", "transformer", "concat"],
                        help="fusion methods to train (default: gated transformer concat)")
    parser.add_argument("--shards", default="data/shards", help="shard folder (ids, classes)")
    parser.add_argument("--embeddings", default="data/embeddings", help="cached expert embeddings")
    parser.add_argument("--out", default=None, help="write the table as JSON here too")
    args = parser.parse_args()
    cfg = section(FusionConfig, "fusion", args.params)
    if args.without not in cfg.modalities:
        raise PipelineError(f"--without {args.without}: fusion.modalities is {cfg.modalities}")
    rest = [m for m in cfg.modalities if m != args.without]
    if len(rest) < 2:
        raise PipelineError("leaving it out would leave fewer than two modalities to fuse")
    unknown = [m for m in args.methods if m not in FUSIONS]
    if unknown:
        raise PipelineError(f"--methods: unknown {unknown}; registered: {sorted(FUSIONS)}")
    reader = ShardReader(args.shards)
    meta = reader.meta
    data = {s: load_fusion_split(Path(args.embeddings), s, cfg.modalities, n_classes=len(meta["classes"]),
                                 shard_ids=sorted(x["id"] for x in reader.samples(s, decode_images=False)))
            for s in filled_splits(meta)}
    device = pick_device(cfg.device)
    table = {}
    print(f"{'method':<12} {'split':<12} {'with ' + args.without:>16} {'without':>16} {'gain':>7} {'noise':>6}  beyond")
    for method in args.methods:
        with_it = scores(method, cfg.modalities, data, cfg, meta, device)
        without = scores(method, rest, data, cfg, meta, device)
        table[method] = {}
        for split in with_it:
            a, b = with_it[split], without[split]
            gain = round(a["auroc"] - b["auroc"], 4)
            noise = round(2 * math.sqrt(a["auroc_std"] ** 2 + b["auroc_std"] ** 2), 4)
            beyond = abs(gain) > noise
            table[method][split] = {"with": a, "without": b, "gain": gain, "seed_noise": noise, "beyond_noise": beyond}
            print(f"{method:<12} {split:<12} {a['auroc']:.3f} ± {a['auroc_std']:.3f}    {b['auroc']:.3f} ± "
                  f"{b['auroc_std']:.3f} {gain:+.3f} {noise:6.3f}  {'yes' if beyond else 'no'}")
    if args.out:
        write_json(args.out, {"without": args.without, "modalities": cfg.modalities, "seeds": cfg.train.seeds,
                              "methods": table})


if __name__ == "__main__":
    run_cli(main)
