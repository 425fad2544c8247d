"""Each stage's code deps in dvc.yaml are exactly the code it runs: every project module its command runs (imports
inside functions, the packages above, and the plugin and config modules the expert registry loads by string, per
tools.import_graph), as folders where the whole folder is used. So a code change reruns the stages that run it,
and no other."""
import re
from pathlib import Path

import pytest
import yaml

from tools.import_graph import minimal_deps, stage_modules

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"^(Step_\d|core|tools|bench)(/|$)")


def stage_deps():
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        stage = stage.get("do", stage)
        yield name, stage["cmd"], [d.rstrip("/") for d in stage.get("deps", [])]


def code_deps(deps: list[str]) -> set[str]:
    return {d for d in deps if CODE.match(d) and (d.endswith(".py") or not Path(d).suffix)}


def test_every_stage_lists_exactly_the_code_it_runs():
    wrong = {}
    for name, cmd, deps in stage_deps():
        expected, listed = set(minimal_deps(stage_modules(cmd))), code_deps(deps)
        if expected != listed:
            wrong[name] = {"missing": sorted(expected - listed), "not run": sorted(listed - expected)}
    assert not wrong, f"stage code deps differ from the code they run (python -m tools.import_graph --stage-deps " \
                      f"dvc.yaml prints the right lists): {wrong}"


def test_every_dep_exists():
    missing = {name: [d for d in deps if CODE.match(d) and not (ROOT / d).exists()] for name, _, deps in stage_deps()}
    assert not {k: v for k, v in missing.items() if v}


def test_a_stage_command_must_run_a_project_module():
    with pytest.raises(ValueError, match="no module of the project"):
        stage_modules("python -m Step_4.no_such_stage --x")


def test_an_expert_stage_depends_on_its_own_modality_only():
    deps = {name: d for name, _, d in stage_deps()}
    assert "Step_4/text" in deps["text_expert"] and "Step_4/vision" not in deps["text_expert"]
    assert "Step_4/vision" in deps["vision_expert"] and "Step_4/text" not in deps["vision_expert"]
    # fusion loads every saved expert through the registry, so every modality's plugin is its code
    assert {"Step_4/text", "Step_4/vision", "Step_4/temporal"} <= set(deps["fusion"])


def test_a_package_init_that_runs_code_is_a_dep():
    assert "core/__init__.py" in minimal_deps(stage_modules("python -m Step_1.prepare")) or \
        "core" in minimal_deps(stage_modules("python -m Step_1.prepare"))
