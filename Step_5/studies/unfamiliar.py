"""Stage `unfamiliar`: how often each fusion model flags benign memes that look like nothing it was trained on.

Renders `unfamiliar.count` benign memes from material outside the generator (another font in sentence
case, backgrounds it never draws, wording not from its caption grammar; Step_1.synthetic.unfamiliar),
reads them exactly as `Step_5.predict` does (OCR included, no metadata) and reports per method (its seed
ensemble, the deployed model) the false-positive rate (share predicted as the positive class) with a bootstrap
95 % interval over the memes, and the mean positive probability. With --calibration (the evaluate stage's
models/calibration.json), also the rate at the max-F1 operating point of the calibrated probabilities: the
decision the deployed model makes.
Writes the images to data/unfamiliar/ and metrics/unfamiliar.json.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.cli import run_cli
from core.files import atomic_dir, clean_stale_temps, write_json
from core.params import check, section
from Step_1.synthetic.unfamiliar import make_unfamiliar_benign
from Step_5.models import FUSIONS
from Step_5.predict import Predictor


@dataclass
class UnfamiliarConfig:
    count: int = 100
    seed: int = 5
    image_size: int = 320
    bootstrap: int = 1000  # resamples of the memes behind each 95 % interval

    def __post_init__(self) -> None:
        check(self.count >= 1, f"count must be >= 1, got {self.count}")


def render(cfg: UnfamiliarConfig, out: Path) -> list[Path]:
    """Write the memes as JPEG files into `out` (atomically); returns their paths."""
    clean_stale_temps(out.parent, out.name)
    with atomic_dir(out) as tmp:
        for i in range(cfg.count):
            _, jpeg = make_unfamiliar_benign(i, seed=cfg.seed, size=cfg.image_size)
            (tmp / f"{i:04d}.jpg").write_bytes(jpeg)
    return sorted(out.glob("*.jpg"))


def rate_with_interval(flags: np.ndarray, resamples: int, seed: int) -> dict:
    """The share of flagged memes and its bootstrap 95 % interval (the memes resampled with replacement)."""
    rng = np.random.default_rng(seed)
    shares = flags[rng.integers(0, len(flags), (resamples, len(flags)))].mean(1)
    low, high = np.percentile(shares, [2.5, 97.5])
    return {"rate": round(float(flags.mean()), 4), "ci95": [round(float(low), 4), round(float(high), 4)]}


def false_positives(model_dir: Path, experts_dir: Path, paths: list[Path], cfg: UnfamiliarConfig,
                    calibration: Path | None = None) -> dict:
    """Raw probabilities at 0.5 and, with a calibration file, the calibrated max-F1 operating point."""
    predictor = Predictor(model_dir, experts_dir, calibration=calibration,
                          operating_point="max_f1" if calibration else None)
    positive = predictor.classes[predictor.info["positive_index"]]
    results = list(predictor.predict_many(paths))
    scores = np.array([r["probabilities"][positive] for r in results])
    raw = rate_with_interval(scores > 0.5, cfg.bootstrap, cfg.seed)
    out = {"fpr": raw["rate"], "fpr_ci95": raw["ci95"], "mean_positive_probability": round(float(scores.mean()), 4)}
    if calibration:
        flagged = rate_with_interval(np.array([r["flagged"] for r in results]), cfg.bootstrap, cfg.seed)
        out.update(fpr_max_f1=flagged["rate"], fpr_max_f1_ci95=flagged["ci95"],
                   max_f1_threshold=results[0]["operating_point"]["threshold"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.studies.unfamiliar", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (section unfamiliar)")
    parser.add_argument("--fusion", default="models/mm_fusion", help="folder holding one folder per fusion method")
    parser.add_argument("--experts", default="models", help="folder holding <modality>_expert/")
    parser.add_argument("--methods", nargs="+", default=list(FUSIONS))
    parser.add_argument("--images", default="data/unfamiliar", help="output folder for the rendered memes")
    parser.add_argument("--out", default="metrics/unfamiliar.json", help="output metrics (per method)")
    parser.add_argument("--calibration", default=None, help="the evaluate stage's models/calibration.json: also the "
                                                            "rate at the calibrated max-F1 operating point")
    args = parser.parse_args()
    cfg = section(UnfamiliarConfig, "unfamiliar", args.params)
    paths = render(cfg, Path(args.images))
    calibration = Path(args.calibration) if args.calibration else None
    result = {m: false_positives(Path(args.fusion) / m, Path(args.experts), paths, cfg, calibration)
              for m in args.methods}
    write_json(args.out, {"methods": result})
    print("unfamiliar benign memes, false-positive rate: " + ", ".join(f"{m} {r['fpr']}" for m, r in result.items()))


if __name__ == "__main__":
    run_cli(main)
