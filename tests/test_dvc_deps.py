"""Every project module a stage's command runs is one of the stage's deps (so a code change reruns it), and every
code dep it lists is code it runs (so nothing else does). Imports inside functions count, and so do the plugin and
config modules the expert registry loads by string (tools.import_graph.stage_modules)."""
import re
from pathlib import Path

import yaml

from tools.import_graph import module_file, stage_modules

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"^(Step_\d|core|tools|bench)(/|$)")


def stage_deps():
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        stage = stage.get("do", stage)
        yield name, stage["cmd"], [d.rstrip("/") for d in stage.get("deps", [])]


def used_files(cmd: str) -> set[str]:
    return {str(module_file(m).relative_to(ROOT)) for m in stage_modules(cmd)} - {None}


def test_stage_deps_cover_the_code_each_stage_runs():
    missing = {}
    for name, cmd, deps in stage_deps():
        uncovered = sorted(f for f in used_files(cmd) if not f.endswith("__init__.py") and not any(
            f == d or f.startswith(d + "/") for d in deps))
        if uncovered:
            missing[name] = uncovered
    assert not missing, f"stages run code they do not list in deps: {missing}"


def test_every_code_dep_is_code_the_stage_runs():
    unused = {}
    for name, cmd, deps in stage_deps():
        used = used_files(cmd)
        extra = [d for d in deps if CODE.match(d) and d.endswith(".py") and d not in used]
        extra += [d for d in deps if CODE.match(d) and (ROOT / d).is_dir()
                  and not any(f.startswith(d + "/") for f in used)]
        if extra:
            unused[name] = extra
    assert not unused, f"stages list code deps they never run: {unused}"


def test_an_expert_stage_depends_on_its_own_modality_only():
    deps = dict((name, d) for name, _, d in stage_deps())
    assert "Step_4/text" in deps["text_expert"] and "Step_4/vision" not in deps["text_expert"]
    assert "Step_4/vision" in deps["vision_expert"] and "Step_4/text" not in deps["vision_expert"]
    # fusion loads every saved expert through the registry, so every modality's plugin is its code
    assert {"Step_4/text", "Step_4/vision", "Step_4/temporal"} <= set(deps["fusion"])
