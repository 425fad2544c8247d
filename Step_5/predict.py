"""Classify memes with a trained fusion model: prints one JSON line (or CSV row) per image.

Each result: path, the text used (OCR with Step 2's exact settings, or --text), the source of that text, the
probability per class, the predicted label, each expert's own positive-class probability ("experts": where the
modalities disagree), and gate weights for the gated model. With the evaluate stage's models/calibration.json
(found automatically), also the calibrated probability per class (temperature fitted on val); --operating-point
NAME adds 'flagged', the decision at that threshold (chosen on val: max_f1, precision_90, recall_90).
Images that cannot be read get an "error" field; the exit code is then 1. --format csv writes a header and one
row per image (columns path, label, p_<class>..., calibrated_<class>..., flagged, gate_<modality>..., layers_text
when the text expert halts early (DACT), text_source, text, error). With a DACT text expert every result also
carries "layers_used": {"text": n}.

Example:
  python -m Step_5.predict --model models/mm_fusion/gated memes/ cat.jpg --tabular '{"prior_reports": 3}'
  python -m Step_5.predict --model models/mm_fusion/gated meme.jpg --series engagement.csv
  python -m Step_5.predict --model models/mm_fusion/gated memes/ --format csv > scores.csv
  python -m Step_5.predict --model models/mm_fusion/gated memes/ --operating-point precision_90
"""
from __future__ import annotations

import argparse
import csv
import difflib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from core.cli import run_cli
from core.errors import PipelineError
from core.files import file_sha256, read_json
from core.params import build
from core.seed import pick_device
from Step_1.series import SeriesConfig, parse_series
from Step_2.images import BadImage, read_image
from Step_2.tesseract import OcrSettings, read_texts
from Step_3.tabular import as_number
from Step_4.engine import to_device
from Step_4.features.batches import expert_inputs, presence_mask
from Step_4.registry import load_expert
from Step_5.ensemble import load_fusion_head
from Step_5.memory_store import explain_with_memory, open_memory

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given; folders expanded to the image files inside them (sorted)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        else:
            out.append(p)
    return out


class Predictor:
    """Loads a fusion model and its experts once; `predict_many(paths)` classifies images in batches."""

    def __init__(self, model_dir: str | Path, experts_dir: str | Path | None = None, device: str = "cpu",
                 batch_size: int = 24, calibration: str | Path | None = "auto", operating_point: str | None = None,
                 memory: str | Path | None = None):
        model_dir = Path(model_dir)
        self.device, self.batch_size = pick_device(device), batch_size
        self.model, self.info = load_fusion_head(model_dir, self.device)
        self.modalities = self.info["modalities"]
        self.classes = self.info["classes"]
        self.experts, schema = {}, None
        for m in self.modalities:
            folder = Path(experts_dir) / f"{m}_expert" if experts_dir else Path(self.info["experts"][m])
            self.experts[m], info = load_expert(folder, self.device)
            if info.get("classes", self.classes) != self.classes:
                raise PipelineError(f"{folder} predicts {info['classes']} but {model_dir} was trained on "
                                    f"{self.classes}; rerun the fusion stages (dvc repro) or pass --experts")
            schema = info.get("tabular_schema", schema)
        self.schema = schema
        self.memory = open_memory(memory, self.classes, self.modalities) if memory else None
        # experts that halt early (DACT text) report the layers each meme used
        self.adaptive = [m for m, e in self.experts.items() if hasattr(e.encoder, "layers_used")]
        self.inputs = expert_inputs({m: e.encoder for m, e in self.experts.items()}, train=False,
                                    meta={"tabular": schema})
        self.ocr = build(OcrSettings, self.info.get("ocr_settings", {}), where="fusion.json ocr_settings")
        self.temperature, self.bias, self.threshold, self.operating_point = self.load_calibration(
            model_dir, calibration, operating_point)

    def load_calibration(self, model_dir: Path, path: str | Path | None, operating_point: str | None) -> tuple:
        """(temperature, per-class bias, threshold, operating point name) from the evaluate stage's calibration file.

        'auto' looks for calibration.json in the models folder that holds mm_fusion/ (models/calibration.json);
        None (or a missing auto file) gives raw probabilities, which an operating point cannot use.
        """
        auto = path == "auto"
        path = model_dir.resolve().parent.parent / "calibration.json" if auto else path
        if path is None or (auto and not Path(path).is_file()):
            if operating_point:
                raise PipelineError("--operating-point needs the evaluate stage's calibration file: run "
                                    "`dvc repro evaluate` (writes models/calibration.json) or pass --calibration")
            return None, None, None, None
        if not Path(path).is_file():
            raise PipelineError(f"{path} not found; run `dvc repro evaluate` or pass another --calibration file")
        calibration = read_json(path)
        entry = calibration["models"].get(f"fusion_{self.info['method']}")
        if entry is None:
            raise PipelineError(f"{path} has no entry for fusion_{self.info['method']}; rerun `dvc repro evaluate`")
        problem = None
        if calibration.get("classes", self.classes) != self.classes:
            problem = f"{path} was fitted for classes {calibration['classes']}, the model predicts {self.classes}"
        elif entry.get("model_sha256") and entry["model_sha256"] != file_sha256(model_dir / "model.safetensors"):
            problem = f"{path} was fitted on another version of {model_dir} (its weights changed since)"
        if problem:
            if operating_point or not auto:
                raise PipelineError(f"{problem}; rerun `dvc repro evaluate`, or pass --calibration none")
            print(f"warning: {problem}; using uncalibrated probabilities (rerun `dvc repro evaluate`)", file=sys.stderr)
            return None, None, None, None
        bias = torch.tensor(entry.get("bias") or [0.0] * len(self.classes))
        if operating_point is None:
            return entry["temperature"], bias, None, None
        points = entry["operating_points"]
        if operating_point not in points:
            raise PipelineError(f"unknown operating point '{operating_point}'; {path} has: {', '.join(points)}")
        if not points[operating_point].get("reached_on_val", True):
            print(f"warning: operating point {operating_point} did not reach its target on val; its threshold is the "
                  "closest one found", file=sys.stderr)
        return entry["temperature"], bias, points[operating_point]["threshold"], operating_point

    @torch.no_grad()
    def classify(self, samples: list[dict]) -> list[dict]:
        """Samples {'id', 'image' (PIL RGB), 'text', 'meta': {'label', 'tabular'}} -> probabilities (and gates)."""
        transform, collate = self.inputs
        batch = to_device(collate([transform(s) for s in samples]), self.device)
        fused = {"mask": presence_mask(batch, self.modalities)}
        layers = {}
        for m, expert in self.experts.items():
            fused[m] = expert.forward_features(batch)
            fused[f"{m}_logits"] = expert.forward_head(fused[m])
            if m in self.adaptive:
                layers[m] = expert.encoder.layers_used.tolist()
        logits = self.model(fused).float().cpu()
        probs = torch.softmax(logits, dim=-1)
        calibrated = torch.softmax(logits / self.temperature + self.bias, dim=-1) if self.temperature else None
        gates = self.model.gates(fused)[0].cpu() if hasattr(self.model, "gates") else None
        positive = self.info.get("positive_index", len(self.classes) - 1)
        experts = {m: torch.softmax(fused[f"{m}_logits"].float(), -1)[:, positive].tolist() for m in self.experts}
        results = []
        for i, row in enumerate(probs.tolist()):
            result = {"probabilities": {c: round(p, 5) for c, p in zip(self.classes, row)},
                      "label": self.classes[int(probs[i].argmax())],
                      "experts": {m: round(found[i], 5) for m, found in experts.items()}}
            if calibrated is not None:
                result["calibrated"] = {c: round(p, 5) for c, p in zip(self.classes, calibrated[i].tolist())}
                result["temperature"] = self.temperature
            if self.threshold is not None:
                result["operating_point"] = {"name": self.operating_point, "threshold": self.threshold}
                result["flagged"] = bool(calibrated[i, positive] >= self.threshold)
            if gates is not None:
                result["gates"] = {m: round(w, 5) for m, w in zip(self.modalities, gates[i].tolist())}
            if layers:
                result["layers_used"] = {m: used[i] for m, used in layers.items()}
            results.append(result)
        if self.memory is not None:  # the labelled memory's vote and the neighbours that moved it
            for result, extra in zip(results, explain_with_memory(self.memory, fused, probs, self.modalities)):
                result.update(extra)
        return results

    def check_tabular(self, row: dict) -> None:
        """Fail naming the field when metadata has a field the model does not know or a non-numeric number."""
        numeric = [f["name"] for f in (self.schema or {}).get("numeric", [])]
        known = numeric + [f["name"] for f in (self.schema or {}).get("categorical", [])]
        for key, value in row.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise PipelineError(f"tabular field '{key}' is unknown to this model{hint}; fields: {', '.join(known)}")
            if key in numeric and value is not None and as_number(value) is None:
                raise PipelineError(f"tabular field '{key}' must be a number (or null), got {value!r}")

    def read_series(self, value: str | None):
        """An engagement series given on the command line (a .npy / .csv file or an inline JSON list, as the
        importers take them), checked against the temporal expert's hours and channels; None without one."""
        if value is None:
            return None
        expert = self.experts.get("temporal")
        if expert is None:
            raise PipelineError(f"--series: this model fuses {', '.join(self.modalities)}, not temporal")
        shape = SeriesConfig(steps=expert.encoder.steps, channels=expert.encoder.channels)
        root = Path.cwd()
        if not value.lstrip().startswith("["):  # a file anywhere: read from its own folder
            path = Path(value).resolve()
            root, value = path.parent, path.name
        return parse_series(value, cfg=shape, root=root, where="--series")

    def predict_many(self, paths: list[Path], text: str | None = None, tabular: dict | None = None,
                     series=None) -> Iterator[dict]:
        """One result per path, in order: {'path', 'text', 'text_source', 'probabilities', 'label', ['gates']}
        or {'path', 'error'}. OCR reads each batch of images in one tesseract run. `series` (hours x channels,
        NaN rows for missing hours; see read_series) goes with every image; without it the temporal modality is
        missing and the fusion masks it."""
        self.check_tabular(tabular or {})
        for start in range(0, len(paths), self.batch_size):
            chunk, images, errors = paths[start:start + self.batch_size], {}, {}
            for path in chunk:
                try:
                    images[path] = read_image(path)[1]
                except BadImage as err:
                    errors[path] = f"cannot read image: {err}"
            texts = ([(text, "given")] * len(images) if text is not None else
                     [(t, "ocr") for t, _ in read_texts(list(images.values()), self.ocr)])
            samples = [{"id": str(p), "image": img, "text": t, "meta": {"label": -1, "tabular": tabular or {}},
                        "series": series} for (p, img), (t, _) in zip(images.items(), texts)]
            scored = dict(zip(images, self.classify(samples) if samples else []))
            sources = dict(zip(images, texts))
            for path in chunk:
                if path in errors:
                    yield {"path": str(path), "error": errors[path]}
                else:
                    yield {"path": str(path), "text": sources[path][0], "text_source": sources[path][1],
                           **scored[path]}


def predict_paths(model_dir: str | Path, paths: list[str], text: str | None = None, tabular: dict | None = None,
                  experts_dir: str | Path | None = None, device: str = "cpu") -> list[dict]:
    """Python entry point: one result dict per image (an 'error' entry for unreadable ones)."""
    return list(Predictor(model_dir, experts_dir, device).predict_many(expand_paths(paths), text, tabular))


def csv_row(result: dict, classes: list[str], modalities: list[str], adaptive: list[str] = ()) -> dict:
    """One flat CSV row from a result dict (empty cells where a field does not apply); adaptive: the modalities
    whose expert reports the layers it used."""
    row = {"path": result["path"], "label": result.get("label", "")}
    row.update({f"p_{c}": result.get("probabilities", {}).get(c, "") for c in classes})
    row.update({f"calibrated_{c}": result.get("calibrated", {}).get(c, "") for c in classes})
    row["flagged"] = result.get("flagged", "")
    row.update({f"gate_{m}": result.get("gates", {}).get(m, "") for m in modalities})
    row.update({f"layers_{m}": result.get("layers_used", {}).get(m, "") for m in adaptive})
    row.update(text_source=result.get("text_source", ""), text=result.get("text", ""), error=result.get("error", ""))
    return row


def write_results(results, predictor: Predictor, fmt: str, out=None) -> bool:
    """Print results as JSON lines or CSV; True when any image failed."""
    out = out or sys.stdout
    failed, writer = False, None
    for result in results:
        failed |= "error" in result
        if fmt == "jsonl":
            print(json.dumps(result, ensure_ascii=False), file=out, flush=True)
            continue
        row = csv_row(result, predictor.classes, predictor.modalities, predictor.adaptive)
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="image files or folders")
    parser.add_argument("--model", required=True, help="fusion model folder, e.g. models/mm_fusion/gated")
    parser.add_argument("--text", default=None, help="use this text instead of OCR (for every image)")
    parser.add_argument("--tabular", default=None, help='tabular fields as JSON, e.g. \'{"prior_reports": 2}\'')
    parser.add_argument("--series", default=None, help="engagement series for every image: a .npy or .csv file "
                        "(hours x channels) or an inline JSON list; without it the temporal modality is missing")
    parser.add_argument("--experts", default=None, help="folder with <modality>_expert/ (default: as recorded)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (CUDA when present)")
    parser.add_argument("--calibration", default="auto",
                        help="the evaluate stage's calibration file (temperatures, thresholds); 'auto': calibration.json "
                             "in the models folder above mm_fusion/, when there is one; 'none': raw probabilities only")
    parser.add_argument("--memory", default=None, help="labelled memory folder (models/memory; added memes included): "
                        "the kNN-combined probability and the 3 nearest labelled memes (docs/memory.md)")
    parser.add_argument("--operating-point", default=None,
                        help="decide with a threshold chosen on val by the evaluate stage: max_f1, precision_90, "
                             "recall_90 (names as in models/calibration.json); adds 'flagged' to each result")
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="JSON lines or CSV with a header")
    args = parser.parse_args()
    tabular = None
    if args.tabular:
        try:
            tabular = json.loads(args.tabular)
        except json.JSONDecodeError as err:
            raise PipelineError(f"--tabular is not valid JSON: {err}") from None
        if not isinstance(tabular, dict):
            raise PipelineError("--tabular must be a JSON object of field: value")
    paths = expand_paths(args.paths)
    if not paths:
        raise PipelineError(f"no image files found in {args.paths}")
    calibration = None if args.calibration == "none" else args.calibration
    predictor = Predictor(args.model, args.experts, args.device, calibration=calibration,
                          operating_point=args.operating_point, memory=args.memory)
    series = predictor.read_series(args.series)
    failed = write_results(predictor.predict_many(paths, args.text, tabular, series), predictor, args.format)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    run_cli(main)
