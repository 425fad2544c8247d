"""The whole DAG end to end on the tiny profile, then predict on a meme that was never in the dataset."""
import csv
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from tools.smoke import run_smoke

pytestmark = pytest.mark.e2e


SMOKE_THREADS = 1  # each build's stages: two builds side by side on two cores, and reruns below match them


@pytest.fixture(scope="module")
def smoke_builds(tmp_path_factory):
    """Two builds of the whole DAG from scratch, side by side: {'repo': (target, result), 'second': ...}. Most of
    a tiny build is single-threaded start-up, so the pair takes about as long as one build on every core."""
    root = tmp_path_factory.mktemp("smoke")
    with ThreadPoolExecutor(2) as pool:
        runs = {name: pool.submit(run_smoke, root / name, verbose=False, threads=SMOKE_THREADS)
                for name in ("repo", "second")}
        return {name: (root / name, run.result()) for name, run in runs.items()}


@pytest.fixture(scope="module")
def smoke_dir(smoke_builds):
    return smoke_builds["repo"]


def smoke_env() -> dict:
    """The environment of a stage run again by hand in a smoke build: its thread count, for identical floats."""
    return {**os.environ, "PIPELINE_THREADS": str(SMOKE_THREADS)}


def test_whole_dag_builds_and_second_repro_does_nothing(smoke_dir):
    target, result = smoke_dir
    for path in ["data/prepared/records.jsonl", "data/manifest.jsonl", "data/ocr.jsonl", "data/label_taxonomy.json",
                 "data/splits.json", "data/shards/meta.json", "models/text_expert/model.safetensors",
                 "metrics/evaluation.json", "reports/evaluation.html", "models/calibration.json",
                 "models/vision_expert/expert.json", "models/tabular_mfm/encoder.safetensors",
                 "models/tabular_expert/model.safetensors", "data/embeddings/vision/test_unseen.safetensors",
                 "models/mm_fusion/gated/fusion.json", "metrics/comparison.json", "metrics/unfamiliar.json"]:
        assert (target / path).exists(), path
    assert list((target / "data/shards/train").glob("*.tar"))
    comparison = json.loads((target / "metrics/comparison.json").read_text())
    assert set(comparison["models"]) == {"text_expert", "vision_expert", "tabular_expert", "temporal_expert",
                                         "fusion_concat",
                                         "fusion_gated", "fusion_transformer", "fusion_late", "fusion_align",
                                         "fusion_cross"}
    for scores in comparison["models"].values():
        assert all(np.isfinite(v) for split in ("val", "test_seen") for v in scores[split].values())
    gated = json.loads((target / "metrics/fusion_gated.json").read_text())
    facts = json.loads((target / "reports/fusion_gated.json").read_text())
    assert abs(sum(facts["gates"]["test_seen"]["all"].values()) - 1) < 1e-3
    assert facts["seeds"] == [0, 1] and set(facts["per_seed"]) == {"0", "1"}  # the smoke profile's two seeds
    assert gated["test_seen"]["auroc_std"] >= 0 and "test_unseen" in gated["vs_true_label"]
    unfamiliar = json.loads((target / "metrics/unfamiliar.json").read_text())
    assert set(unfamiliar["methods"]) == {"concat", "gated", "transformer", "late", "align", "cross"}
    assert all(0 <= m["fpr"] <= 1 for m in unfamiliar["methods"].values())
    assert result["second_run_stages"] == [], result["second_run_output"]  # strictly nothing reran
    assert result["status_after"] == {}  # and `dvc status` reports every stage up to date


def test_metrics_files_hold_quality_only(smoke_dir):
    """No timings, counters, seeds or params in metrics/*.json (they go to reports/), so that `dvc metrics diff`
    and `dvc exp show` compare quality."""
    target, _ = smoke_dir
    not_quality = ("per_s", "seconds", "images", "epoch", "rows", "count", "samples", "params", "gates", "throughput",
                   "training", "rejected", "empty_text")

    def keys(node):
        for key, value in node.items():
            yield key
            if isinstance(value, dict):
                yield from keys(value)

    for path in (target / "metrics").glob("*.json"):
        found = [k for k in keys(json.loads(path.read_text()))
                 if k in ("n", "seeds", "per_seed") or any(w in k for w in not_quality)]
        assert not found, (path.name, found)
    assert json.loads((target / "reports/ocr.json").read_text())["images"] > 0
    assert json.loads((target / "reports/text_expert.json").read_text())["samples"]["test_seen"] > 0


def test_a_second_build_from_scratch_gives_the_same_metrics(smoke_builds):
    """What an unchanged clone's `dvc metrics diff` compares: on the same machine, a fresh build of the same
    code and params gives the same metrics, file for file and as `dvc metrics show` reads them."""
    from tools.smoke import dvc

    (target, _), (second, result) = smoke_builds["repo"], smoke_builds["second"]
    assert result["second_run_stages"] == [] and result["status_after"] == {}
    shown = [json.loads(dvc(root, "metrics", "show", "--json").stdout) for root in (target, second)]
    assert shown[0] == shown[1] and shown[0]
    for path in sorted((target / "metrics").rglob("*.json")):
        assert path.read_bytes() == (second / path.relative_to(target)).read_bytes(), path.relative_to(target)


def test_own_data_with_broken_files_goes_through(smoke_dir):
    """The example Hateful-Memes folder and CSV export import beside the synthetic source;
    their broken files are listed with reasons and the official HM splits are kept."""
    target, _ = smoke_dir
    rejected = json.loads((target / "data/rejected.json").read_text())
    reasons = {Path(r["image"]).name: r["reason"] for r in rejected}
    assert "empty" in reasons["10024.png"] and "truncated" in reasons["10025.png"]
    assert "not an image" in reasons["10026.png"] and "truncated" in reasons["post_truncated.jpg"]
    assert "escapes the dataset root" in reasons["outside.jpg"]
    meta = json.loads((target / "data/shards/meta.json").read_text())
    assert meta["sources"] == ["csv_example", "hm_example", "synthetic"]
    splits = json.loads((target / "data/splits.json").read_text())["ids"]
    assert all(f"hm_example-{10016 + i}" in splits["test_unseen"] for i in range(8))  # test_unseen.jsonl
    assert meta["counts"]["test_unseen"].get("unlabelled", 0) == 8
    ocr = json.loads((target / "reports/ocr.json").read_text())
    assert ocr["rejected"] == 5


def test_predict_on_a_new_meme(smoke_dir, tmp_path):
    from Step_1.synthetic.render import draw_caption
    from Step_1.synthetic.scenes import make_background

    target, _ = smoke_dir
    rng = np.random.default_rng(2024)
    meme = tmp_path / "new_meme.png"
    draw_caption(make_background("landscape", 320, rng), "WHEN THE COFFEE", "FINALLY KICKS IN", rng).save(meme)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = subprocess.run([sys.executable, "-m", "Step_5.predict", "--model", "models/mm_fusion/gated", str(meme),
                          str(broken), "--tabular", '{"prior_reports": 1}'], cwd=target, capture_output=True, text=True)
    assert out.returncode == 1, out.stderr  # one unreadable image
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    good, bad = lines
    assert "COFFEE" in good["text"] and good["text_source"] == "ocr"
    assert abs(sum(good["probabilities"].values()) - 1) < 1e-4 and good["label"] in good["probabilities"]
    assert abs(sum(good["gates"].values()) - 1) < 1e-4
    assert bad["path"] == str(broken) and "cannot read image" in bad["error"]
    as_csv = subprocess.run([sys.executable, "-m", "Step_5.predict", "--model", "models/mm_fusion/gated", str(meme),
                             str(broken), "--format", "csv"], cwd=target, capture_output=True, text=True)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert as_csv.returncode == 1 and [r["path"] for r in rows] == [str(meme), str(broken)]
    assert {"label", "p_benign", "p_abuse_hate", "gate_text", "gate_vision", "gate_tabular", "text", "error"} <= set(rows[0])
    assert abs(float(rows[0]["p_benign"]) + float(rows[0]["p_abuse_hate"]) - 1) < 1e-4 and rows[0]["error"] == ""
    assert "cannot read image" in rows[1]["error"] and rows[1]["label"] == ""


def test_predict_takes_an_engagement_series(smoke_dir, tmp_path):
    """--series (a file or inline JSON) reaches the temporal expert: the gate gives it weight; without it the
    temporal modality is masked (gate 0); a bad series is refused naming the problem."""
    from Step_1.synthetic.generate import make_engagement, make_meme
    from Step_1.synthetic.options import SyntheticOptions

    target, _ = smoke_dir
    opts = SyntheticOptions(count=10, seed=5)
    record, jpeg = make_meme(3, opts)
    meme = tmp_path / "meme.jpg"
    meme.write_bytes(jpeg)
    series = next(s for s in (make_engagement(make_meme(i, opts)[0], i, opts, 72) for i in range(10)) if s is not None)
    np.save(tmp_path / "engagement.npy", series)

    def predict(*extra):
        return subprocess.run([sys.executable, "-m", "Step_5.predict", "--model", "models/mm_fusion/gated", str(meme),
                               *extra], cwd=target, capture_output=True, text=True)

    with_file, without = predict("--series", str(tmp_path / "engagement.npy")), predict()
    assert with_file.returncode == 0 and without.returncode == 0, with_file.stderr + without.stderr
    gates = json.loads(with_file.stdout)["gates"]
    assert gates["temporal"] > 0 and json.loads(without.stdout)["gates"]["temporal"] == 0
    inline = predict("--series", json.dumps([None if np.isnan(r).all() else r.tolist() for r in series]))
    assert json.loads(inline.stdout)["probabilities"] == json.loads(with_file.stdout)["probabilities"]
    bad = predict("--series", json.dumps([[1, 2, 3, 4, -5]] * 72))
    assert bad.returncode != 0 and "-5" in bad.stderr and "negative" in bad.stderr


def test_predict_refuses_experts_with_another_taxonomy(smoke_dir, tmp_path):
    import shutil

    from core.errors import PipelineError
    from Step_5.predict import Predictor

    target, _ = smoke_dir
    for m in ("text", "vision", "tabular"):
        shutil.copytree(target / f"models/{m}_expert", tmp_path / f"{m}_expert")
    info = json.loads((tmp_path / "vision_expert/expert.json").read_text())
    info["classes"] = ["benign", "abuse_hate", "spam"]
    (tmp_path / "vision_expert/expert.json").write_text(json.dumps(info))
    with pytest.raises(PipelineError, match=r"vision_expert predicts \['benign', 'abuse_hate', 'spam'\] but"):
        Predictor(target / "models/mm_fusion/gated", tmp_path)


@pytest.mark.parametrize("modality,extra", [("text", {"trainable_layers": 1, "max_length": 24}),
                                            ("vision", {"trainable_blocks": 1, "embed_batch_size": 16})])
def test_expert_finetune_mode_on_real_shards(smoke_dir, tmp_path, modality, extra):
    """mode: finetune trains the encoder's top layers from the shards and still caches embeddings."""
    import yaml

    target, _ = smoke_dir
    params = yaml.safe_load((target / "params.yaml").read_text())
    section = params[f"{modality}_expert"]
    section.update({"mode": "finetune", **extra})
    section["train"].update({"epochs": 1, "batch_size": 16})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = subprocess.run([sys.executable, "-m", "Step_4.train_expert", modality, "--params", str(tmp_path / "params.yaml"),
                          "--shards", "data/shards", "--model", str(tmp_path / "model"),
                          "--embeddings", str(tmp_path / "emb"), "--metrics-dir", str(tmp_path / "metrics"),
                          "--reports-dir", str(tmp_path / "reports")],
                         cwd=target, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "metrics" / f"{modality}_expert.json").read_text())
    facts = json.loads((tmp_path / "reports" / f"{modality}_expert.json").read_text())
    assert facts["training"]["epochs_run"] == 1 and 0 <= report["test_seen"]["auroc"] <= 1
    from Step_4.features.tensors import load_embeddings
    from Step_4.registry import load_expert

    emb = load_embeddings(tmp_path / "emb" / "test_seen.safetensors")
    expert, _ = load_expert(tmp_path / "model")
    tuned = dict(expert.encoder.named_parameters())
    original, _ = load_expert(target / f"models/{modality}_expert")  # frozen-mode expert: pretrained encoder
    same = [n for n, p in original.encoder.named_parameters() if torch.equal(p, tuned[n])]
    assert same and len(same) < len(tuned), "lower layers stay frozen, top layers change"
    assert emb["features"].shape[0] == len(emb["ids"])


def test_predict_reads_a_batch_of_memes_in_one_tesseract_run(smoke_dir, tmp_path, monkeypatch):
    import Step_5.predict as predict_module
    from Step_1.synthetic.render import draw_caption
    from Step_1.synthetic.scenes import make_background

    target, _ = smoke_dir
    rng = np.random.default_rng(7)
    paths = []
    for i, words in enumerate(["MONDAY AGAIN", "PIZZA FRIDAY", "MY PLANTS"]):
        paths.append(tmp_path / f"meme{i}.png")
        draw_caption(make_background("landscape", 320, rng), words, "", rng).save(paths[-1])
    runs = []
    real = predict_module.read_texts
    monkeypatch.setattr(predict_module, "read_texts", lambda images, s: runs.append(len(images)) or real(images, s))
    predictor = predict_module.Predictor(target / "models/mm_fusion/concat", target / "models")
    results = list(predictor.predict_many(paths))
    assert runs == [3]
    assert [r["path"] for r in results] == [str(p) for p in paths] and "PIZZA" in results[1]["text"]
    one = list(predictor.predict_many([paths[1]]))[0]
    assert one["probabilities"] == results[1]["probabilities"]  # a batch scores each meme as it would alone


@pytest.mark.parametrize("tabular,message", [('{"prior_report": 3}', "unknown to this model (did you mean 'prior_reports'?)"),
                                             ('{"prior_reports": "many"}', "must be a number")])
def test_predict_rejects_unknown_or_badly_typed_metadata(smoke_dir, tmp_path, tabular, message):
    from PIL import Image

    target, _ = smoke_dir
    Image.new("RGB", (64, 64), "white").save(tmp_path / "plain.png")
    out = subprocess.run([sys.executable, "-m", "Step_5.predict", "--model", "models/mm_fusion/late",
                          str(tmp_path / "plain.png"), "--tabular", tabular], cwd=target, capture_output=True, text=True)
    assert out.returncode == 2 and message in out.stderr and not out.stdout


def test_evaluate_outputs_and_a_second_run_reuses_every_cache(smoke_dir, tmp_path):
    target, _ = smoke_dir
    metrics = json.loads((target / "metrics/evaluation.json").read_text())
    report = json.loads((target / "reports/evaluation.json").read_text())
    models = {"text_expert", "vision_expert", "tabular_expert", "temporal_expert", "fusion_concat", "fusion_gated",
              "fusion_transformer", "fusion_late", "fusion_align", "fusion_cross"}
    assert set(metrics["calibration"]) == models and set(metrics["robustness"]) == models
    for name in models:
        assert set(metrics["calibration"][name]) == set(report["splits"]) == {"val", "test_seen", "test_unseen"}
        assert {"ece_before", "ece_after", "ece_adaptive_before", "brier_after", "nll_after"} <= set(
            metrics["calibration"][name]["test_seen"])
        assert set(report["operating_points"][name]) == {"max_f1", "precision_90", "recall_90"}
        assert set(metrics["robustness"][name]) == {"clean", "jpeg", "border", "ocr_noise", "missing_vision"}
    assert "test_seen" not in metrics["robustness"]["vision_expert"]["missing_vision"]  # no input, no score
    run = json.loads((target / "reports/evaluation_run.json").read_text())["caches"]
    assert run["images_made"] > 0 and run["ocr_read"] > 0
    calibration = json.loads((target / "models/calibration.json").read_text())
    assert calibration["models"]["fusion_gated"]["temperature"] > 0
    # the same stage again on the same caches: no image corrupted, no OCR run, the same metrics
    out = subprocess.run([sys.executable, "-m", "Step_6.evaluate", "--metrics", str(tmp_path / "m.json"),
                          "--report", str(tmp_path / "r.json"), "--run-report", str(tmp_path / "run.json"),
                          "--calibration", str(tmp_path / "c.json"),
                          "--plots", str(tmp_path / "plots")], cwd=target, capture_output=True, text=True,
                         env=smoke_env())
    assert out.returncode == 0, out.stderr[-3000:]
    again = json.loads((tmp_path / "run.json").read_text())["caches"]
    assert again["images_made"] == 0 and again["ocr_read"] == 0 and again["features_encoded"]["vision"] == 0
    assert (tmp_path / "m.json").read_bytes() == (target / "metrics/evaluation.json").read_bytes()
    assert (tmp_path / "r.json").read_bytes() == (target / "reports/evaluation.json").read_bytes()


def test_evaluation_report_opens_from_disk_with_every_figure(smoke_dir, chromium):
    from tools.browser import check_images

    target, _ = smoke_dir
    page = target / "reports/evaluation.html"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html
    images = check_images(page)
    report = json.loads((target / "reports/evaluation.json").read_text())
    mistakes = sum(len(rows) for rows in report["mistakes"].values())
    # reliability (2 test splits), ROC/PR, robustness (2), gates (2), and one thumbnail per mistake
    assert len(images["yes"]) >= 7 + mistakes and not images["no"], images["no"]


def test_predict_uses_the_calibration_and_an_operating_point(smoke_dir):
    target, _ = smoke_dir
    from PIL import Image

    meme = target / "plain.png"
    Image.new("RGB", (96, 96), "white").save(meme)
    out = subprocess.run([sys.executable, "-m", "Step_5.predict", "--model", "models/mm_fusion/gated", str(meme),
                          "--operating-point", "precision_90"], cwd=target, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    calibration = json.loads((target / "models/calibration.json").read_text())["models"]["fusion_gated"]
    assert result["temperature"] == calibration["temperature"]
    assert result["operating_point"]["threshold"] == calibration["operating_points"]["precision_90"]["threshold"]
    assert result["flagged"] == (result["calibrated"]["abuse_hate"] >= result["operating_point"]["threshold"])
    bad = subprocess.run([sys.executable, "-m", "Step_5.predict", "--model", "models/mm_fusion/gated", str(meme),
                          "--operating-point", "precision_95"], cwd=target, capture_output=True, text=True)
    assert bad.returncode == 2 and "max_f1, precision_90, recall_90" in bad.stderr


def test_predict_refuses_a_calibration_fitted_on_other_weights(smoke_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    target, _ = smoke_dir
    model = tmp_path / "mm_fusion" / "gated"
    shutil.copytree(target / "models/mm_fusion/gated", model)
    shutil.copy(target / "models/calibration.json", tmp_path / "calibration.json")  # found beside mm_fusion/
    state = load_file(str(model / "model.safetensors"))
    save_file({k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, str(model / "model.safetensors"))
    (target / "plain.png").exists() or __import__("PIL.Image", fromlist=["x"]).new("RGB", (96, 96)).save(target / "plain.png")
    args = [sys.executable, "-m", "Step_5.predict", "--model", str(model), "--experts", "models", "plain.png"]
    strict = subprocess.run(args + ["--operating-point", "max_f1"], cwd=target, capture_output=True, text=True)
    assert strict.returncode == 2 and "fitted on another version" in strict.stderr
    lenient = subprocess.run(args, cwd=target, capture_output=True, text=True)
    assert lenient.returncode == 0 and "uncalibrated" in lenient.stderr and "calibrated" not in json.loads(lenient.stdout)
