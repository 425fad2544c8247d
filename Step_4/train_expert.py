"""Stage `<kind>_expert`: train and evaluate one expert, and cache its embeddings.

Any registered kind (Step_4.registry: text, vision, tabular, temporal). text / vision, mode 'frozen' (default):
the pretrained encoder runs once over every split, its features are cached, and only the MLP head is
trained on them. Mode 'finetune': the encoder's top layer groups train end to end from the shards
(light augmentation for vision), then features are cached. tabular: an FT-Transformer trained end to
end, initialised from MFM pretraining when tabular_expert.pretrained is on; the other variant is
reported beside it. temporal: a 1D-CNN or transformer over the engagement series, trained end to end.

Launched on several processes (`torchrun --nproc_per_node N -m Step_4.train_expert ...`), the ranks share
the work (core.distributed) and only rank 0 writes.

Every head is trained once per seed in <kind>_expert.train.seeds; metrics give the mean and std per split
(val, test_seen, test_unseen) and the first seed's model is saved. Writes models/<kind>_expert/,
data/embeddings/<kind>/<split>.safetensors, metrics/<kind>_expert.json (quality), reports/<kind>_expert.json (seeds,
timings, training), metrics/plots/<kind>_expert/ and dvclive/<kind>_expert/.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from core import distributed
from core.cli import run_cli
from core.errors import PipelineError
from core.files import atomic_dir, clean_stale_temps, write_json
from core.params import section
from core.seed import pick_device
from Step_3.reader import ShardReader
from Step_4.context import ExpertContext
from Step_4.expert import save_expert
from Step_4.features.tensors import save_embeddings
from Step_4.recipes import TrainedExpert, train_from_shards
from Step_4.registry import EXPERTS, expert_kind
from Step_4.scores import ensemble_probs, headline, summarize, truth_of, write_report


def open_live(name: str):
    from dvclive import Live

    return Live(dir=f"dvclive/{name}", save_dvc_exp=False, dvcyaml=None, report=None)


def train_expert(kind: str, cfg, ctx: ExpertContext) -> TrainedExpert:
    """The plugin's own recipe when it has one, else frozen / finetune from the shards."""
    plugin = expert_kind(kind).load()
    trained = plugin.train(cfg, ctx) if hasattr(plugin, "train") else train_from_shards(kind, cfg, ctx, plugin.build)
    if trained.expert.modality != kind:  # load_expert rebuilds by this name: a plugin's typo would save an unloadable one
        raise PipelineError(f"the {kind} plugin ({plugin.__name__}) returned an expert of modality "
                            f"{trained.expert.modality!r}; make_expert takes the registered name {kind!r}")
    return trained


def save_outputs(name: str, trained: TrainedExpert, meta: dict, *, embeddings: Path, model: Path,
                 metrics_dir: Path, reports_dir: Path, seeds: list[int]) -> dict:
    """Embeddings, the model folder, metrics (mean ± std over seeds) and plots; returns the metrics report."""
    clean_stale_temps(embeddings.parent, embeddings.name)
    with atomic_dir(embeddings) as tmp:
        averaged = ensemble_probs(trained.runs)
        for split, data in trained.data.items():
            ensemble = torch.from_numpy(np.log(np.clip(averaged[split], 1e-12, 1.0)).astype(np.float32))
            save_embeddings(tmp / f"{split}.safetensors", {**data, "ensemble_logits": ensemble},
                            trained.expert.modality)
    summary = trained.result.summary()
    clean_stale_temps(model.parent, model.name)
    with atomic_dir(model) as tmp:
        save_expert(trained.expert.cpu(), tmp, classes=meta["classes"],
                    extra={"training": summary, "tabular_schema": meta["tabular"], "text_source": meta["text_source"]})
    throughput = {"train_samples_per_s": trained.result.samples_per_s,
                  "embed_samples_per_s": trained.embed_samples_per_s}
    extra = dict(trained.extra)
    for file, rows in extra.pop("plots", {}).items():  # a recipe's own plot data (e.g. DACT's depth curve)
        write_json(metrics_dir / "plots" / name / file, rows)
    report = {**summarize(trained.runs, truth_of(trained.data), meta["positive_index"], seeds),
              "throughput": throughput, "training": summary, **extra}
    return write_report(name, report, probs=averaged["test_seen"],
                        labels=trained.data["test_seen"]["labels"].numpy(), classes=meta["classes"],
                        positive=meta["positive_index"], metrics_dir=metrics_dir, reports_dir=reports_dir)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_4.train_expert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=list(EXPERTS), help="which expert to train")
    parser.add_argument("--params", default="params.yaml", help="params file (section <kind>_expert)")
    parser.add_argument("--shards", default="data/shards", help="shard folder or URL prefix from Step_3")
    parser.add_argument("--mfm", default=None, help="tabular only: MFM-pretrained encoder folder")
    parser.add_argument("--feature-cache", default=None,
                        help="frozen encoders: folder of features by content hash (e.g. data/feature_cache/text); "
                             "only memes not embedded before are encoded")
    parser.add_argument("--model", required=True, help="output model folder, e.g. models/text_expert")
    parser.add_argument("--embeddings", required=True, help="output embedding folder, e.g. data/embeddings/text")
    parser.add_argument("--metrics-dir", default="metrics", help="folder for <name>.json (quality) and plots/<name>/")
    parser.add_argument("--reports-dir", default="reports", help="folder for <name>.json: seeds, timings, training")
    args = parser.parse_args()
    kind = expert_kind(args.kind)
    cfg = section(kind.config, kind.section, args.params)
    name = kind.section
    device = distributed.init(pick_device(cfg.device))  # several processes under torchrun
    live = open_live(name) if distributed.is_main() else None
    ctx = ExpertContext(reader=ShardReader(args.shards), device=device, live=live,
                        mfm_dir=Path(args.mfm) if args.mfm else None,
                        feature_cache=Path(args.feature_cache) if args.feature_cache else None)
    trained = train_expert(args.kind, cfg, ctx)
    def write() -> None:  # rank 0 only
        live.end()
        report = save_outputs(name, trained, ctx.meta, embeddings=Path(args.embeddings), model=Path(args.model),
                              metrics_dir=Path(args.metrics_dir), reports_dir=Path(args.reports_dir),
                              seeds=cfg.train.seeds)
        print(f"{name}: {headline(report)}")

    distributed.on_main(write)
    distributed.finish()


if __name__ == "__main__":
    run_cli(main)
