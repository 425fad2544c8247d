"""`make check`: every params problem found in seconds, before any stage (or DVC) touches an output."""
import subprocess
import sys

import yaml

from tools.check_params import check


def test_the_repository_params_pass(repo_root):
    assert check(str(repo_root / "params.yaml")) == []


def test_bad_values_and_a_missing_csv_column_are_all_reported(repo_root, tmp_path):
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["shard"]["fractions"]["train"] = 0.8  # sums to 1.1
    params["fusion"]["modality_dropout"] = 1.5
    params["fusion"]["gated"]["temperatur"] = 2.0
    (tmp_path / "memes.csv").write_text("file,caption\na.png,hello\n")
    params["prepare"]["sources"].append({"name": "mine", "kind": "csv", "path": str(tmp_path / "memes.csv"),
                                         "label_map": {"1": "abuse_hate"}, "options": {"image": "file", "label": "y"}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    problems = check(str(tmp_path / "params.yaml"))
    assert any("fractions must sum to 1" in p for p in problems)
    assert any("modality_dropout" in p for p in problems)
    assert any("no column 'y'" in p for p in problems)
    out = subprocess.run([sys.executable, "-m", "tools.check_params", "--params", str(tmp_path / "params.yaml")],
                         cwd=repo_root, capture_output=True, text=True)
    assert out.returncode == 2 and "nothing was run" in out.stderr and "dvc checkout" in out.stderr


def test_a_typo_in_any_section_is_caught(repo_root, tmp_path):
    """Every top-level section of params.yaml is checked: a misspelt key inside each one, and a misspelt section."""
    from tools.check_params import sections

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    assert set(params) == {name for _, name in sections()}  # make check knows every section the stages read
    for name in params:
        broken = {**params, name: {**params[name], "colour_typo": 1}}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(broken))
        problems = check(str(tmp_path / "params.yaml"))
        assert any("colour_typo" in p for p in problems), (name, problems)
    renamed = {("fuson" if k == "fusion" else k): v for k, v in params.items()}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(renamed))
    assert any("unknown section 'fuson'; did you mean 'fusion'?" in p for p in check(str(tmp_path / "params.yaml")))
