"""Seconds per stage on a scaled copy of the default shards: the measured side of the cost model.

Copies data/shards with every split repeated --scale times (sample keys renamed so no two memes share an id;
images and texts are the real ones), then runs the real stage commands of Step_4 and Step_5 on the copy, one
after another, in a scratch folder (the repository's outputs are left alone). For each stage it prints the
wall seconds, the seconds per 1,000 memes in the scaled shards (all splits) and the throughput the stage
itself reports (embedding and training samples/s). With --nproc N the training stages run under
`torchrun --standalone --nproc_per_node N` (N ranks may share one GPU: they then talk over gloo).

    python -m bench.stage_times --scale 2                      # this machine, the default params
    python -m bench.stage_times --scale 4 --set vision_expert.num_workers=8 --set text_expert.embed_batch_size=512
    python -m bench.stage_times --stages fusion@gated --nproc 2 --reuse   # after a first run, in its scratch folder

Results: a table on stdout and <work>/stage_times.json.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# The dvc.yaml commands, with every path under the scratch folder W (S: the scaled shards, P: the params copy).
STAGES = {
    "text_expert": ["-m", "Step_4.train_expert", "text", "--shards", "{S}", "--model", "{W}/models/text_expert",
                    "--embeddings", "{W}/data/embeddings/text", "--metrics-dir", "{W}/metrics",
                    "--reports-dir", "{W}/reports", "--params", "{P}"],
    "vision_expert": ["-m", "Step_4.train_expert", "vision", "--shards", "{S}", "--model", "{W}/models/vision_expert",
                      "--embeddings", "{W}/data/embeddings/vision", "--metrics-dir", "{W}/metrics",
                      "--reports-dir", "{W}/reports", "--params", "{P}"],
    "tabular_pretrain": ["-m", "Step_4.tabular.pretrain", "--shards", "{S}", "--out", "{W}/models/tabular_mfm",
                         "--metrics", "{W}/metrics/tabular_mfm.json", "--report", "{W}/reports/tabular_mfm.json",
                         "--params", "{P}"],
    "tabular_expert": ["-m", "Step_4.train_expert", "tabular", "--shards", "{S}", "--mfm", "{W}/models/tabular_mfm",
                       "--model", "{W}/models/tabular_expert", "--embeddings", "{W}/data/embeddings/tabular",
                       "--metrics-dir", "{W}/metrics", "--reports-dir", "{W}/reports", "--params", "{P}"],
}
FUSION = ["-m", "Step_5.train_fusion", "{method}", "--shards", "{S}", "--embeddings", "{W}/data/embeddings",
          "--experts", "{W}/models", "--model", "{W}/models/mm_fusion/{method}", "--metrics-dir", "{W}/metrics",
          "--reports-dir", "{W}/reports", "--params", "{P}"]
DEFAULT_STAGES = ["text_expert", "vision_expert", "tabular_pretrain", "tabular_expert", "fusion@gated",
                  "fusion@transformer"]
# Stages that train on every rank under torchrun (frozen-feature extraction is the same work on each rank).
DISTRIBUTED = {"tabular_pretrain", "tabular_expert", "fusion"}


def replicate_shards(src: Path, dst: Path, scale: int, *, source_split: str | None = None) -> dict:
    """Write dst/<split>/<split>-NNNNNN.tar holding every sample of src's split `scale` times (copy i > 0
    renames key k to k~i, in the tar and in its JSON id) and a matching meta.json; returns that meta.
    source_split: build every split from this one split (when only it is at hand)."""
    meta = json.loads((src / "meta.json").read_text())
    if dst.exists():
        shutil.rmtree(dst)
    files, sizes, counts, shard_sizes = {}, {}, {}, {}
    for split in meta["files"]:
        origin = source_split or split
        tars = sorted((src / origin).glob("*.tar"))
        written = []
        (dst / split).mkdir(parents=True)
        for copy in range(scale):
            suffix = (f"~{copy}" if copy else "") if origin == split else f"~{split}{copy}"
            for tar_path in tars:
                out = dst / split / f"{split}-{len(written):06d}.tar"
                written.append(_copy_tar(tar_path, out, suffix=suffix, split=split))
        files[split] = f"{split}/{split}-{{000000..{len(written) - 1:06d}}}.tar"
        shard_sizes[split] = written
        sizes[split] = sum(written)
        counts[split] = {c: n * scale for c, n in meta["counts"][origin].items()}
    meta.update(files=files, shard_sizes=shard_sizes, sizes=sizes, counts=counts,
                shards={s: len(v) for s, v in shard_sizes.items()})
    (dst / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def _copy_tar(src: Path, dst: Path, *, suffix: str, split: str) -> int:
    keys = set()
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for member in tin:
            data = tin.extractfile(member).read()
            key, ext = member.name.split(".", 1)
            keys.add(key)
            if ext == "json":
                record = json.loads(data)
                record["id"], record["split"] = record["id"] + suffix, split
                data = json.dumps(record, sort_keys=True).encode()
            info = tarfile.TarInfo(f"{key}{suffix}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o444
            tout.addfile(info, io.BytesIO(data))
    return len(keys)


def write_params(base: Path, out: Path, overrides: list[str]) -> None:
    """params.yaml with `section.key=value` overrides (values parsed as YAML)."""
    params = yaml.safe_load(base.read_text())
    for item in overrides:
        path, _, value = item.partition("=")
        node, *keys = path.split(".")
        target = params[node]
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = yaml.safe_load(value)
    out.write_text(yaml.safe_dump(params, sort_keys=False))


def stage_command(stage: str, work: Path, shards: Path, params: Path, nproc: int) -> list[str]:
    name, _, method = stage.partition("@")
    args = FUSION if name == "fusion" else STAGES[name]
    args = [a.format(W=work, S=shards, P=params, method=method) for a in args]
    if nproc > 1 and name in DISTRIBUTED:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    return [sys.executable, *args]


def throughput(work: Path, stage: str) -> dict:
    name, _, method = stage.partition("@")
    report = work / "reports" / (f"fusion_{method}.json" if name == "fusion" else f"{name}.json")
    if not report.is_file():
        return {}
    found = json.loads(report.read_text()).get("throughput", {})
    return {k: round(v, 1) for k, v in found.items() if isinstance(v, (int, float))}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stage_times", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=2, help="copies of every split (default 2)")
    parser.add_argument("--shards", default=str(ROOT / "data" / "shards"), help="shards to scale (from Step_3)")
    parser.add_argument("--source-split", default=None, help="build every split from this split's shards only")
    parser.add_argument("--work", default=str(ROOT / "bench" / "results" / "stages"), help="scratch folder")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a param for these runs (repeatable)")
    parser.add_argument("--stages", nargs="*", default=DEFAULT_STAGES,
                        help=f"stages in order (default: {' '.join(DEFAULT_STAGES)}); fusion@<method> for any method")
    parser.add_argument("--nproc", type=int, default=1, help="processes per training stage (torchrun)")
    parser.add_argument("--reuse", action="store_true", help="keep the scratch folder's shards and outputs")
    parser.add_argument("--tag", default="", help="label for this run in the JSON (e.g. 'h100 2 ranks')")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    shards = work / "shards"
    if not args.reuse or not (shards / "meta.json").is_file():
        work.mkdir(parents=True, exist_ok=True)
        meta = replicate_shards(Path(args.shards), shards, args.scale, source_split=args.source_split)
        (work / "scale.json").write_text(json.dumps({"scale": args.scale, "source_split": args.source_split}))
    else:
        meta = json.loads((shards / "meta.json").read_text())
        args.scale = json.loads((work / "scale.json").read_text())["scale"]
    memes = sum(meta["sizes"].values())
    params = work / "params.yaml"
    write_params(Path(args.params), params, args.set)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu, {os.cpu_count()} cores"
    result = {"device": device, "memes": memes, "scale": args.scale, "nproc": args.nproc, "set": args.set,
              "tag": args.tag, "stages": {}}
    out = work / f"stage_times{('-' + args.tag.replace(' ', '_')) if args.tag else ''}.json"
    rows = result["stages"]
    for stage in args.stages:
        command = stage_command(stage, work, shards, params, args.nproc)
        t0 = time.perf_counter()
        done = subprocess.run(command, cwd=work, env=env)
        seconds = time.perf_counter() - t0
        rows[stage] = {"seconds": round(seconds, 1), "s_per_1000_memes": round(1000 * seconds / memes, 2),
                       "ok": done.returncode == 0, **(throughput(work, stage) if done.returncode == 0 else {})}
        print(f"== {stage}: {seconds:.1f} s ({'ok' if done.returncode == 0 else 'FAILED'})", flush=True)
        out.write_text(json.dumps(result, indent=2) + "\n")  # after every stage: a cut-off run keeps what it measured
    print(f"\n{device}; {memes} memes (scale {args.scale}); {args.nproc} process(es) per training stage")
    print(f"{'stage':<22} {'seconds':>8} {'s/1k memes':>11}  reported throughput (samples/s)")
    for stage, row in rows.items():
        extra = ", ".join(f"{k} {v}" for k, v in row.items() if k.endswith("_per_s"))
        print(f"{stage:<22} {row['seconds']:>8.1f} {row['s_per_1000_memes']:>11.2f}  "
              f"{extra or ('FAILED' if not row['ok'] else '')}")
    print(f"JSON in {out}")


if __name__ == "__main__":
    main()
