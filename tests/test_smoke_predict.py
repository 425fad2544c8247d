"""Predict with the tiny DAG's trained models on memes that were never in the dataset: results, engagement
series, refusals (another taxonomy, unknown metadata), and the command line's output formats and exit codes.
The predictor runs in-process; two tests run `python -m Step_5.predict` for what only the CLI does."""
import csv
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import Step_5.predict as predict_module
from core.errors import PipelineError
from Step_5.predict import Predictor, write_results

pytestmark = pytest.mark.e2e

BAD_METADATA = [('{"prior_report": 3}', "unknown to this model (did you mean 'prior_reports'?)"),
                ('{"prior_reports": "many"}', "must be a number")]


def draw_meme(path, top: str, bottom: str, rng: np.random.Generator):
    """A new captioned meme drawn with the generator's renderer, saved at `path`."""
    from Step_1.synthetic.render import draw_caption
    from Step_1.synthetic.scenes import make_background

    draw_caption(make_background("landscape", 320, rng), top, bottom, rng).save(path)
    return path


@pytest.fixture(scope="module")
def memes(tmp_path_factory) -> dict:
    """A new captioned meme, a truncated JPEG and a plain white image."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("memes")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    Image.new("RGB", (96, 96), "white").save(folder / "plain.png")
    new = draw_meme(folder / "new_meme.png", "WHEN THE COFFEE", "FINALLY KICKS IN", np.random.default_rng(2024))
    return {"new": new, "broken": folder / "broken.jpg", "plain": folder / "plain.png"}


@pytest.fixture(scope="module")
def gated(tiny_dag) -> Predictor:
    """The gated fusion model with the build's experts and calibration, loaded once."""
    return Predictor(tiny_dag.path / "models/mm_fusion/gated", tiny_dag.path / "models")


def run_cli(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "Step_5.predict", *args], cwd=cwd, capture_output=True, text=True)


def ocr_once(monkeypatch) -> None:
    """Tesseract reads each distinct batch of images once: predictors over the same memes share the reading."""
    real, read = predict_module.read_texts, {}

    def read_texts(images, settings):
        key = (repr(settings), *(image.tobytes() for image in images))
        if key not in read:
            read[key] = real(images, settings)
        return read[key]

    monkeypatch.setattr(predict_module, "read_texts", read_texts)


def test_predict_on_a_new_meme(gated, memes):
    """OCR reads the caption; probabilities and gates sum to 1; an unreadable image gets an error entry and
    marks the run failed."""
    results = list(gated.predict_many([memes["new"], memes["broken"]], tabular={"prior_reports": 1}))
    lines = io.StringIO()
    assert write_results(results, gated, "jsonl", out=lines)  # one unreadable image
    good, bad = (json.loads(line) for line in lines.getvalue().splitlines())
    assert "COFFEE" in good["text"] and good["text_source"] == "ocr"
    assert abs(sum(good["probabilities"].values()) - 1) < 1e-4 and good["label"] in good["probabilities"]
    assert abs(sum(good["gates"].values()) - 1) < 1e-4
    assert bad["path"] == str(memes["broken"]) and "cannot read image" in bad["error"]


def test_predict_cli_writes_csv_and_exits_1_on_an_unreadable_image(tiny_dag, memes):
    """`--format csv`: a header and one row per image in order, the unreadable one with its error; exit code 1."""
    out = run_cli(tiny_dag.path, "--model", "models/mm_fusion/gated", str(memes["new"]), str(memes["broken"]),
                  "--tabular", '{"prior_reports": 1}', "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert out.returncode == 1, out.stderr
    assert [r["path"] for r in rows] == [str(memes["new"]), str(memes["broken"])]
    assert {"label", "p_benign", "p_abuse_hate", "gate_text", "gate_vision", "gate_tabular", "text", "error"} <= set(rows[0])
    assert abs(float(rows[0]["p_benign"]) + float(rows[0]["p_abuse_hate"]) - 1) < 1e-4 and rows[0]["error"] == ""
    assert "cannot read image" in rows[1]["error"] and rows[1]["label"] == ""


def test_predict_cli_refuses_unknown_metadata_with_exit_2(tiny_dag, memes):
    """A refusal is one line on stderr naming the problem, exit code 2, and nothing on stdout."""
    tabular, message = BAD_METADATA[0]
    out = run_cli(tiny_dag.path, "--model", "models/mm_fusion/late", str(memes["plain"]), "--tabular", tabular)
    assert out.returncode == 2 and message in out.stderr and not out.stdout


@pytest.mark.parametrize("tabular,message", BAD_METADATA)
def test_predict_rejects_unknown_or_badly_typed_metadata(gated, memes, tabular, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        list(gated.predict_many([memes["plain"]], tabular=json.loads(tabular)))


def test_predict_takes_an_engagement_series(gated, tmp_path):
    """A series (a file or inline JSON) reaches the temporal expert: the gate gives it weight; without it the
    temporal modality is masked (gate 0); a bad series is refused naming the problem."""
    from Step_1.synthetic.generate import make_engagement, make_meme
    from Step_1.synthetic.options import SyntheticOptions

    opts = SyntheticOptions(count=10, seed=5)
    meme = tmp_path / "meme.jpg"
    meme.write_bytes(make_meme(3, opts)[1])
    series = next(s for s in (make_engagement(make_meme(i, opts)[0], i, opts, 72) for i in range(10)) if s is not None)
    np.save(tmp_path / "engagement.npy", series)

    with_file = next(gated.predict_many([meme], series=gated.read_series(str(tmp_path / "engagement.npy"))))
    without = next(gated.predict_many([meme]))
    assert with_file["gates"]["temporal"] > 0 and without["gates"]["temporal"] == 0
    inline = gated.read_series(json.dumps([None if np.isnan(r).all() else r.tolist() for r in series]))
    assert next(gated.predict_many([meme], series=inline))["probabilities"] == with_file["probabilities"]
    with pytest.raises(PipelineError) as refused:
        gated.read_series(json.dumps([[1, 2, 3, 4, -5]] * 72))
    assert "-5" in str(refused.value) and "negative" in str(refused.value)


def test_predict_refuses_experts_with_another_taxonomy(tiny_dag, tmp_path):
    import shutil

    target = tiny_dag.path
    for m in ("text", "vision", "tabular"):
        shutil.copytree(target / f"models/{m}_expert", tmp_path / f"{m}_expert")
    info = json.loads((tmp_path / "vision_expert/expert.json").read_text())
    info["classes"] = ["benign", "abuse_hate", "spam"]
    (tmp_path / "vision_expert/expert.json").write_text(json.dumps(info))
    with pytest.raises(PipelineError, match=r"vision_expert predicts \['benign', 'abuse_hate', 'spam'\] but"):
        Predictor(target / "models/mm_fusion/gated", tmp_path)


def test_predict_reads_a_batch_of_memes_in_one_tesseract_run(tiny_dag, tmp_path, monkeypatch):
    target = tiny_dag.path
    rng = np.random.default_rng(7)
    paths = [draw_meme(tmp_path / f"meme{i}.png", words, "", rng)
             for i, words in enumerate(["MONDAY AGAIN", "PIZZA FRIDAY", "MY PLANTS"])]
    runs = []
    real = predict_module.read_texts
    monkeypatch.setattr(predict_module, "read_texts", lambda images, s: runs.append(len(images)) or real(images, s))
    predictor = Predictor(target / "models/mm_fusion/concat", target / "models")
    results = list(predictor.predict_many(paths))
    assert runs == [3]
    assert [r["path"] for r in results] == [str(p) for p in paths] and "PIZZA" in results[1]["text"]
    one = list(predictor.predict_many([paths[1]]))[0]
    assert one["probabilities"] == results[1]["probabilities"]  # a batch scores each meme as it would alone


def test_predict_uses_the_calibration_and_an_operating_point(tiny_dag, memes):
    """The evaluate stage's temperature and the operating point's threshold decide 'flagged'; an unknown
    operating point is refused listing the known ones."""
    target = tiny_dag.path
    model = target / "models/mm_fusion/gated"
    predictor = Predictor(model, target / "models", operating_point="precision_90")
    result = next(predictor.predict_many([memes["plain"]]))
    calibration = json.loads((target / "models/calibration.json").read_text())["models"]["fusion_gated"]
    assert result["temperature"] == calibration["temperature"]
    assert result["operating_point"]["threshold"] == calibration["operating_points"]["precision_90"]["threshold"]
    assert result["flagged"] == (result["calibrated"]["abuse_hate"] >= result["operating_point"]["threshold"])
    with pytest.raises(PipelineError, match="max_f1, max_f1_unseen, precision_90, recall_90"):
        predictor.load_calibration(model, "auto", "precision_95")  # what Predictor(..., operating_point=) runs


def test_predict_refuses_a_calibration_fitted_on_other_weights(tiny_dag, memes, tmp_path, capsys):
    """Weights changed after the evaluate stage: an operating point is refused, and without one the
    probabilities stay uncalibrated with a warning."""
    import shutil

    from safetensors.torch import load_file, save_file

    target = tiny_dag.path
    model = tmp_path / "mm_fusion" / "gated"
    shutil.copytree(target / "models/mm_fusion/gated", model)
    shutil.copy(target / "models/calibration.json", tmp_path / "calibration.json")  # found beside mm_fusion/
    state = load_file(str(model / "model.safetensors"))
    save_file({k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, str(model / "model.safetensors"))
    lenient = Predictor(model, target / "models")
    assert "uncalibrated" in capsys.readouterr().err
    assert "calibrated" not in next(lenient.predict_many([memes["plain"]]))
    with pytest.raises(PipelineError, match="fitted on another version"):
        lenient.load_calibration(model, "auto", "max_f1")  # what Predictor(..., operating_point=) runs


def test_unfamiliar_false_positive_rate_is_the_share_of_memes_flagged(tiny_dag, monkeypatch):
    """metrics/unfamiliar.json, per fusion method: 'fpr' is the share of the rendered benign memes whose positive
    probability, as predict scores them, is over 0.5, and the mean positive probability is their mean."""
    target = tiny_dag.path
    memes = sorted((target / "data/unfamiliar").glob("*.jpg"))
    assert len(memes) == 12  # unfamiliar.count in the smoke profile
    ocr_once(monkeypatch)  # every method reads the same memes
    reported = json.loads((target / "metrics/unfamiliar.json").read_text())["methods"]
    for method, metrics in reported.items():
        predictor = Predictor(target / "models/mm_fusion" / method, target / "models", calibration=None)
        scores = np.array([r["probabilities"]["abuse_hate"] for r in predictor.predict_many(memes)])
        assert metrics["fpr"] == pytest.approx((scores > 0.5).mean(), abs=1e-4), method
        assert metrics["mean_positive_probability"] == pytest.approx(scores.mean(), abs=2e-4), method
