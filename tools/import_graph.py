"""The project's import graph: every import of every module (top-level and inside functions), plus the
modules the expert registry names by string, and the cycles in it.

    python -m tools.import_graph            # print each cycle (exit 1 if there is one)
    python -m tools.import_graph --edges    # print every project edge
"""
from __future__ import annotations

import argparse
import ast
import functools
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("Step_1", "Step_2", "Step_3", "Step_4", "Step_5", "Step_6", "Step_7", "core", "tools", "bench")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    path = root.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, root: Path) -> str | None:
    """The project module `name` refers to: itself, or its package when it names an attribute."""
    if name.split(".")[0] not in PACKAGES:
        return None
    while name:
        if module_file(name, root) is not None:
            return name
        name = name.rpartition(".")[0]
    return None


KIND_FIELDS = ("name", "module", "config_path")  # ExpertKind's fields, in order


def registrations(path: Path) -> list[tuple[str, set[str]]]:
    """(kind, the modules it names: plugin and config) of every `ExpertKind(...)` call in a file. The names must be
    string literals, so that the registry's imports can be followed without running it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "ExpertKind"):
            continue
        given = dict(zip(KIND_FIELDS, node.args)) | {k.arg: k.value for k in node.keywords if k.arg in KIND_FIELDS}
        if not all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in given.values()):
            raise ValueError(f"{path}:{node.lineno}: ExpertKind(...) takes string literals (name, module, "
                             "'module:Class'), so the import graph can follow the plugin it names")
        values = {k: v.value for k, v in given.items()}
        found.append((values.get("name", ""), {values[k].split(":")[0] for k in KIND_FIELDS[1:] if k in values}))
    return found


def registry_modules(path: Path) -> set[str]:
    """The modules a file registers by string: the registry imports them when a kind is used, so they count as
    its imports."""
    return set().union(*(modules for _, modules in registrations(path)))


def imports_of(path: Path, root: Path = ROOT, *, with_registry: bool = True) -> set[str]:
    """The project modules `path` imports anywhere in its body (function-level imports included) and, with
    `with_registry`, the modules it registers by string (`registry_modules`)."""
    this = module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            resolved = _resolve(name, root)
            if resolved and resolved != this:
                found.add(resolved)
    if with_registry:
        found.update(m for m in registry_modules(path) if _resolve(m, root) and m != this)
    return found


def project_modules(root: Path = ROOT) -> list[Path]:
    return sorted(p for package in PACKAGES for p in (root / package).rglob("*.py") if (root / package).is_dir())


def import_graph(root: Path = ROOT, *, with_registry: bool = True) -> dict[str, set[str]]:
    """module -> the project modules it imports; a module that registers expert kinds by string also 'imports'
    each plugin and config module it names."""
    return {module_name(p, root): imports_of(p, root, with_registry=with_registry) for p in project_modules(root)}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def registered_kinds(root: Path = ROOT) -> dict[str, set[str]]:
    """kind name -> the modules its `ExpertKind(...)` registration names (plugin and config), read statically."""
    return {name: modules for path in project_modules(root) for name, modules in registrations(path)}


@functools.lru_cache(maxsize=8)
def _static_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]], frozenset[str]]:
    """(import graph without registry strings, registered kinds, modules that register kinds) of a tree."""
    registering = frozenset(module_name(p, root) for p in project_modules(root) if registry_modules(p))
    return import_graph(root, with_registry=False), registered_kinds(root), registering


def stage_modules(cmd: str, root: Path = ROOT) -> set[str]:
    """The project modules a stage command runs: every `python -m X` in it, what X imports transitively, and the
    packages above each (their __init__ runs first). A registry's string imports count for the kind a command
    names as its first argument (`python -m Step_4.train_expert text`), or for every kind when it names none."""
    graph, kinds, registry_files = _static_graph(root)
    launched = re.findall(r"python -m ([\w.]+)(?:\s+(\w+))?", cmd)
    missing = [module for module, _ in launched if module not in graph]
    if missing:
        raise ValueError(f"{cmd!r} runs {missing}, which is no module of the project")
    named = [first for _, first in launched if first in kinds]
    extra = set().union(*(kinds[k] for k in (named or kinds))) if kinds else set()
    seen: set[str] = set()
    todo = [module for module, _ in launched]
    while todo:
        module = todo.pop()
        if module in seen or module not in graph:
            continue
        seen.add(module)
        todo += list(graph[module]) + [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        if module in registry_files:
            todo += extra
    return seen


def runs_code(path: Path) -> bool:
    """Whether a module holds more than a docstring (an __init__ that does something is a dep like any module)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def minimal_deps(modules: set[str], root: Path = ROOT) -> list[str]:
    """The stage's code as dvc.yaml deps: a folder where every module in it (and below) is used, else files."""
    files = {str(module_file(m, root).relative_to(root)) for m in modules}
    files = {f for f in files if not f.endswith("__init__.py") or runs_code(root / f)}
    folders = sorted({str(parent) for f in files for parent in Path(f).parents if str(parent) != "."}, key=len)
    deps: list[str] = []
    for folder in folders:
        if any(folder.startswith(d + "/") for d in deps):
            continue
        inside = {str(p.relative_to(root)) for p in (root / folder).rglob("*") if p.is_file()
                  and (p.name != "__init__.py" or runs_code(p)) and "__pycache__" not in p.parts}
        if inside and inside <= files:
            deps.append(folder)
    covered = {f for f in files if any(f.startswith(d + "/") for d in deps)}
    return sorted(deps) + sorted(files - covered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", action="store_true", help="print every project import edge")
    parser.add_argument("--stage-deps", metavar="DVC_YAML", help="print each stage's code deps, folders where exact")
    args = parser.parse_args(argv)
    if args.stage_deps:
        import yaml

        for name, stage in yaml.safe_load(Path(args.stage_deps).read_text())["stages"].items():
            stage = stage.get("do", stage)
            print(f"{name}:")
            for dep in minimal_deps(stage_modules(stage["cmd"])):
                print(f"      - {dep}")
        return 0
    graph = import_graph()
    if args.edges:
        for module in sorted(graph):
            for target in sorted(graph[module]):
                print(f"{module} -> {target}")
    found = cycles(graph)
    for component in found:
        print("cycle:", " <-> ".join(component))
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} project imports, {len(found)} cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
