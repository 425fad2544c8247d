"""Do the verdicts depend on the CPU? Reruns every training stage from the shards under another CPU kernel choice
and compares its comparison with the default run's.

torch picks its CPU kernels by instruction set (AVX-512 here, AVX2 elsewhere); `ATEN_CPU_CAPABILITY=avx2` makes this
machine compute like a CPU without AVX-512. Text features are computed in fp32 on every CPU (text_expert.precision),
so a CPU with or without bf16 instructions reads the same features. The experts, the tabular pretraining and every
fusion method are retrained in a scratch folder (the repository's outputs are left alone; text features are
recomputed, vision features come from the content-addressed cache: OpenVINO does not read ATEN_CPU_CAPABILITY),
then compare runs on them. Printed: every verdict of metrics/comparison.json side by side (best expert, best
fusion, the beyond-noise flags of the deployed ensemble vs the best expert), and the largest change of any seed
ensemble's and any per-seed mean's AUROC / macro-F1. Exit status 1 when a verdict differs or an ensemble metric
moves by more than --tolerance.

    python -m bench.cross_cpu                      # ~8 minutes on 2 cores; default run's metrics must be current
    python -m bench.cross_cpu --capability default --work /tmp/cross_cpu

Results: the table on stdout and <work>/cross_cpu.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("concat", "gated", "transformer", "late", "align", "cross")


def commands(work: Path) -> list[list[str]]:
    """The dvc.yaml commands of the training stages and compare, with outputs under `work`."""
    common = ["--shards", "data/shards", "--metrics-dir", f"{work}/metrics", "--reports-dir", f"{work}/reports"]
    experts = [["-m", "Step_4.train_expert", kind, "--model", f"{work}/models/{kind}_expert",
                "--embeddings", f"{work}/embeddings/{kind}", *common, *extra]
               for kind, extra in (("text", ["--feature-cache", f"{work}/feature_cache/text"]),
                                   ("vision", ["--feature-cache", "data/feature_cache/vision"]),
                                   ("tabular", ["--mfm", f"{work}/models/tabular_mfm"]), ("temporal", []))]
    pretrain = ["-m", "Step_4.tabular.pretrain", "--shards", "data/shards", "--out", f"{work}/models/tabular_mfm",
                "--metrics", f"{work}/metrics/tabular_mfm.json", "--report", f"{work}/reports/tabular_mfm.json"]
    fusions = [["-m", "Step_5.train_fusion", m, "--embeddings", f"{work}/embeddings", "--experts", f"{work}/models",
                "--model", f"{work}/models/mm_fusion/{m}", *common] for m in METHODS]
    compare = ["-m", "Step_5.studies.compare", "--metrics-dir", f"{work}/metrics", "--embeddings", f"{work}/embeddings",
               "--fusion-models", f"{work}/models/mm_fusion", "--reports-dir", f"{work}/reports",
               "--out", f"{work}/metrics/comparison.json"]
    return [pretrain, *experts, *fusions, compare]


def verdicts(comparison: dict) -> dict:
    """The comparison's decisions: which models are best, and which deployed gains are beyond the seed noise."""
    out = {"best_expert": comparison["best_expert"], "best_fusion": comparison["best_fusion"]}
    for split, gains in comparison.get("deployed_minus_best_expert", {}).items():
        for key, gain in gains.items():
            out[f"deployed beyond noise, {split} {key}"] = gain["beyond_noise"] if gain else None
    return out


def largest_moves(a: dict, b: dict) -> dict:
    """The largest |a - b| over models and splits of the ensembles' and the per-seed means' AUROC and macro-F1."""
    moves = {"ensemble": (0.0, ""), "per-seed mean": (0.0, "")}
    for name, row in a["models"].items():
        other = b["models"][name]
        for split, scores in row.items():
            if split in ("kind", "ensemble"):
                continue
            for key in ("auroc", "macro_f1"):
                pairs = {"ensemble": (row["ensemble"][split][key], other["ensemble"][split][key]),
                         "per-seed mean": (scores[key], other[split][key])}
                for what, (x, y) in pairs.items():
                    if x is not None and y is not None and abs(x - y) > moves[what][0]:
                        moves[what] = (round(abs(x - y), 4), f"{name} {split} {key}")
    return {k: {"change": v[0], "where": v[1]} for k, v in moves.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cross_cpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capability", default="avx2", help="ATEN_CPU_CAPABILITY of the rerun (default, avx2, avx512)")
    parser.add_argument("--work", default=None, help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--reference", default="metrics/comparison.json", help="the default run's comparison")
    parser.add_argument("--tolerance", type=float, default=0.01, help="largest ensemble metric change allowed")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="cross_cpu_")).resolve()
    env = {**os.environ, "ATEN_CPU_CAPABILITY": args.capability}
    started = time.perf_counter()
    for cmd in commands(work):
        print(f"[{time.perf_counter() - started:5.0f} s] {' '.join(cmd[1:3])}", flush=True)
        subprocess.run([sys.executable, *cmd], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    reference = json.loads((ROOT / args.reference).read_text())
    rerun = json.loads((work / "metrics" / "comparison.json").read_text())
    before, after = verdicts(reference), verdicts(rerun)
    moves = largest_moves(reference, rerun)
    print(f"\n{'verdict':<48} {'default':<20} {'ATEN_CPU_CAPABILITY=' + args.capability:<20}")
    for key in before:
        mark = "" if before[key] == after.get(key) else "   <- differs"
        print(f"{key:<48} {str(before[key]):<20} {str(after.get(key)):<20}{mark}")
    for what, move in moves.items():
        print(f"largest change, {what}: {move['change']:.4f} ({move['where']})")
    same = before == after
    within = moves["ensemble"]["change"] <= args.tolerance
    result = {"capability": args.capability, "verdicts_identical": same, "ensemble_within_tolerance": within,
              "tolerance": args.tolerance, "verdicts": {"default": before, "rerun": after}, "largest_moves": moves,
              "seconds": round(time.perf_counter() - started, 1)}
    (work / "cross_cpu.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"verdicts identical: {same}; ensemble metrics within {args.tolerance}: {within}; {work}/cross_cpu.json")
    sys.exit(0 if same and within else 1)


if __name__ == "__main__":
    main()
