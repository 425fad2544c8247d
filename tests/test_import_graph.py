"""No import cycles in the project (static imports, imports inside functions, and the modules the expert registry
loads by string), and the checker finds each kind of cycle."""
from pathlib import Path

import pytest

from tools.import_graph import cycles, import_graph, stage_modules


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_project_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    root = write(tmp_path, {"core/__init__.py": "", "core/a.py": "from core import b\n",
                            "core/b.py": "def f():\n    from core.a import x\n", "core/c.py": "import core.a\n"})
    assert cycles(import_graph(root, with_registry=False)) == [["core.a", "core.b"]]


def test_a_cycle_through_the_registry_strings_is_found(tmp_path):
    root = write(tmp_path, {
        "Step_4/__init__.py": "", "Step_4/toy/__init__.py": "",
        "Step_4/registry.py": 'register_expert(ExpertKind("toy", "Step_4.toy.plugin", "Step_4.toy.config:ToyConfig"))\n',
        "Step_4/toy/config.py": "class ToyConfig: ...\n",
        "Step_4/toy/plugin.py": "from Step_4.registry import modalities\n"})
    assert cycles(import_graph(root)) == [["Step_4.registry", "Step_4.toy.plugin"]]
    assert cycles(import_graph(root, with_registry=False)) == []


def test_a_stage_runs_the_plugin_of_the_kind_it_names(tmp_path):
    root = write(tmp_path, {
        "Step_4/__init__.py": "", "Step_4/a/__init__.py": "", "Step_4/b/__init__.py": "",
        "Step_4/registry.py": ('register_expert(ExpertKind("a", "Step_4.a.plugin", "Step_4.a.plugin:C"))\n'
                               'register_expert(ExpertKind("b", "Step_4.b.plugin", "Step_4.b.plugin:C"))\n'),
        "Step_4/a/plugin.py": "", "Step_4/b/plugin.py": "", "Step_4/train.py": "from Step_4 import registry\n"})
    assert "Step_4.b.plugin" not in stage_modules("python -m Step_4.train a --x", root)
    assert {"Step_4.a.plugin", "Step_4.b.plugin"} <= stage_modules("python -m Step_4.train --all", root)


def test_a_registration_by_keyword_is_followed_and_a_computed_one_refused(tmp_path):
    root = write(tmp_path, {
        "Step_4/__init__.py": "", "Step_4/toy/__init__.py": "", "Step_4/toy/plugin.py": "import Step_4.registry\n",
        "Step_4/registry.py": 'ExpertKind(name="toy", module="Step_4.toy.plugin", config_path="Step_4.toy.plugin:C")\n'})
    assert cycles(import_graph(root)) == [["Step_4.registry", "Step_4.toy.plugin"]]
    (root / "Step_4/registry.py").write_text('NAME = "Step_4.toy.plugin"\nExpertKind("toy", NAME, NAME + ":C")\n')
    with pytest.raises(ValueError, match="takes string literals"):
        import_graph(root)
