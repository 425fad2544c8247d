"""Every project module a stage's command imports is one of the stage's deps, so a code change reruns it."""
import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("Step_1", "Step_2", "Step_3", "Step_4", "Step_5", "Step_6", "core", "tools")


def module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def project_files(module: str) -> set[Path]:
    """The module and every project module it imports, transitively (static imports only)."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        path = module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += [name for name in imported_names(path) if name.split(".")[0] in PACKAGES]
    return seen


def test_stage_deps_cover_the_code_each_stage_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    missing = {}
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        deps = [d.rstrip("/") for d in stage.get("deps", [])]
        used = set().union(*(project_files(m) for m in re.findall(r"python -m ([\w.]+)", stage["cmd"])))
        uncovered = sorted(str(p.relative_to(ROOT)) for p in used if p.name != "__init__.py" and not any(
            str(p.relative_to(ROOT)) == d or str(p.relative_to(ROOT)).startswith(d + "/") for d in deps))
        if uncovered:
            missing[name] = uncovered
    assert not missing, f"stages import code they do not list in deps: {missing}"
