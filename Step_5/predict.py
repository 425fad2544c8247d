"""Classify memes with a trained fusion model: prints one JSON line per image.

Each line: path, the text used (OCR with Step 2's exact settings, or --text), the source of that
text, the probability per class, the predicted label, and gate weights for the gated model.
Images that cannot be read get a line with an "error" field; the exit code is then 1.

Example:
  python -m Step_5.predict --model models/mm_fusion/gated memes/ cat.jpg --tabular '{"prior_reports": 3}'
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from core.errors import PipelineError, run_cli
from core.files import read_json
from core.params import build
from Step_2.engine import OcrSettings, read_text
from Step_2.images import BadImage, read_image
from Step_3.tabular import TabularEncoder
from Step_4.expert import load_expert
from Step_5.models import METHODS, FusionDims

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
    """Loads a fusion model and its experts once; `predict(path)` classifies one image."""

    def __init__(self, model_dir: str | Path, experts_dir: str | Path | None = None, device: str = "cpu"):
        model_dir = Path(model_dir)
        if not (model_dir / "fusion.json").is_file():
            raise PipelineError(f"{model_dir} is not a fusion model folder (fusion.json missing); "
                                "pass e.g. models/mm_fusion/gated after `dvc repro`")
        self.info = read_json(model_dir / "fusion.json")
        self.device = device
        self.modalities = self.info["modalities"]
        self.classes = self.info["classes"]
        self.experts = {}
        for m in self.modalities:
            folder = Path(experts_dir) / f"{m}_expert" if experts_dir else Path(self.info["experts"][m])
            self.experts[m], info = load_expert(folder, device)
            if m == "tabular":
                self.tabular = TabularEncoder(info["tabular_schema"])
        self.vision_transform = self.experts["vision"].encoder.transform(False) if "vision" in self.experts else None
        self.ocr = build(OcrSettings, self.info.get("ocr_settings", {}), where="fusion.json ocr_settings")
        dims = FusionDims(inputs=self.info["inputs"], n_classes=len(self.classes))
        self.model = METHODS[self.info["method"]](dims=dims, **self.info["params"])
        state = load_file(str(model_dir / "model.safetensors"))
        state.pop("_empty", None)
        self.model.load_state_dict(state)
        self.model.to(device).eval()

    @torch.no_grad()
    def predict(self, path: str | Path, text: str | None = None, tabular: dict | None = None) -> dict:
        """One image → {'path', 'text', 'text_source', 'probabilities', 'label', ['gates']}."""
        _, rgb, _ = read_image(path)
        text_source = "given" if text is not None else "ocr"
        if text is None:
            text, _ = read_text(rgb, self.ocr)
        batch, present = {}, []
        for m in self.modalities:
            expert = self.experts[m]
            if m == "text":
                inputs = expert.encoder.tokenize([text])
                present.append(bool(text.strip()))
            elif m == "vision":
                inputs = {"image": self.vision_transform(rgb).unsqueeze(0)}
                present.append(True)
            else:
                row = tabular or {}
                x_num, missing, x_cat = self.tabular.encode(row)
                inputs = {"x_num": torch.from_numpy(x_num)[None], "missing": torch.from_numpy(missing)[None],
                          "x_cat": torch.from_numpy(x_cat)[None]}
                present.append(not self.tabular.is_empty(row))
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            features = expert.forward_features(inputs)
            batch[m] = features
            batch[f"{m}_logits"] = expert.forward_head(features)
        batch["mask"] = torch.tensor([present], device=self.device)
        probs = torch.softmax(self.model(batch).float(), dim=-1)[0].cpu().tolist()
        result = {"path": str(path), "text": text, "text_source": text_source,
                  "probabilities": {c: round(p, 5) for c, p in zip(self.classes, probs)},
                  "label": self.classes[int(max(range(len(probs)), key=probs.__getitem__))]}
        if self.info["method"] == "gated":
            gates = self.model.last_gates[0].cpu().tolist()
            result["gates"] = {m: round(w, 5) for m, w in zip(self.modalities, gates)}
        return result


def predict_paths(model_dir: str | Path, paths: list[str], text: str | None = None, tabular: dict | None = None,
                  experts_dir: str | Path | None = None) -> list[dict]:
    """Python entry point: one result dict per image (an 'error' entry for unreadable ones)."""
    predictor = Predictor(model_dir, experts_dir)
    results = []
    for path in expand_paths(paths):
        try:
            results.append(predictor.predict(path, text=text, tabular=tabular))
        except BadImage as err:
            results.append({"path": str(path), "error": f"cannot read image: {err}"})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_5.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="image files or folders")
    parser.add_argument("--model", required=True, help="fusion model folder, e.g. models/mm_fusion/gated")
    parser.add_argument("--text", default=None, help="use this text instead of OCR (for every image)")
    parser.add_argument("--tabular", default=None, help='tabular fields as JSON, e.g. \'{"prior_reports": 2}\'')
    parser.add_argument("--experts", default=None, help="folder with <modality>_expert/ (default: as recorded)")
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
    failed = False
    for result in predict_paths(args.model, [str(p) for p in paths], args.text, tabular, args.experts):
        failed |= "error" in result
        print(json.dumps(result, ensure_ascii=False))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    run_cli(main)
