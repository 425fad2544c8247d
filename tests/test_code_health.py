"""The code stays in shape: ruff finds nothing (pyproject.toml [tool.ruff]), no module is over 300 lines and no
function over 60 (tools.code_size), and the checker does flag an oversized function."""
import shutil
import subprocess
import sys
from pathlib import Path

from tools.code_size import oversized

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    out = subprocess.run([ruff, "check", "--no-cache", "--quiet", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_module_over_300_lines_and_no_function_over_60():
    assert oversized() == []


def test_the_size_check_flags_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "long.py").write_text(f"def long():\n{body}\n")
    assert oversized(tmp_path) == ["core/long.py:1 long(): 62 lines (max 60)"]
