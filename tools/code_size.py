"""Modules over 300 lines and functions over 60 lines in the project's code (tests and tools included).

    python -m tools.code_size          # list them; exit 1 if there is one
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("Step_1", "Step_2", "Step_3", "Step_4", "Step_5", "Step_6", "Step_7", "core", "tools", "bench", "tests")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def python_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for folder in FOLDERS if (root / folder).is_dir() for p in (root / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


def oversized(root: Path = ROOT) -> list[str]:
    """One line per module over MAX_MODULE_LINES and per function over MAX_FUNCTION_LINES."""
    found = []
    for path in python_files(root):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(root)
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{name}: {lines} lines (max {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{name}:{node.lineno} {node.name}(): {length} lines (max {MAX_FUNCTION_LINES})")
    return found


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    found = oversized()
    print("\n".join(found) if found else "no module over 300 lines, no function over 60")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
