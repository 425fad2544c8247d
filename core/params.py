"""params.yaml into plain dataclasses; unknown or misspelled keys fail with the key named."""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from core.errors import PipelineError

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


def load_params(path: str | Path = PARAMS_FILE) -> dict:
    """Read the whole params file as a dict."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: params file not found; run from the repository root")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: expected a mapping of sections at the top level")
    return data


def section(cls: type[T], name: str, path: str | Path = PARAMS_FILE) -> T:
    """Build dataclass `cls` from section `name` (dotted for nesting, e.g. 'fusion.gated').

    A field declared with `field(metadata={"section": "other"})` is read from the top-level section
    'other' instead (one section shared by several stages, e.g. tabular_model).
    """
    params = load_params(path)
    node: Any = params
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise PipelineError(f"{path}: section '{name}' is missing")
        node = node[part]
    shared = {f.name: f.metadata["section"] for f in dataclasses.fields(cls) if "section" in f.metadata}
    if shared and isinstance(node, dict):
        node = dict(node)
        for key, other in shared.items():
            if key in node:
                raise PipelineError(f"params '{name}': '{key}' comes from the section '{other}'; set it there")
            if other not in params:
                raise PipelineError(f"{path}: section '{other}' is missing (needed by '{name}')")
            node[key] = params[other]
    return build(cls, node, where=name)


def build(cls: type[T], data: Any, where: str) -> T:
    """Recursively build a dataclass from a mapping, checking key names and value types."""
    if not isinstance(data, dict):
        raise PipelineError(f"params '{where}': expected a mapping, got {type(data).__name__}")
    # a field may be spelled otherwise in YAML (metadata {"key": ...}), e.g. 'lambda', a Python keyword
    fields = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; allowed: {', '.join(fields)}"
        raise PipelineError(f"params '{where}': unknown key '{key}'{hint}")
    kwargs = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise PipelineError(f"params '{where}': required key '{name}' is missing")
            continue
        kwargs[field.name] = _convert(hints[field.name], data[name], f"{where}.{name}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise PipelineError(f"params '{where}': {err}") from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except PipelineError as err:
                errors.append(str(err))
        if len(errors) > 1:  # e.g. int | Literal["auto"]: say every form the key takes
            raise PipelineError(f"params '{where}': " + "; or ".join(e.split("': ", 1)[-1] for e in errors))
        raise PipelineError(errors[0] if errors else f"params '{where}': bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise PipelineError(f"params '{where}': {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise PipelineError(f"params '{where}': expected a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict:
        if not isinstance(value, dict):
            raise PipelineError(f"params '{where}': expected a mapping, got {value!r}")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()} if args else value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if tp is float:
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PipelineError(f"params '{where}': expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PipelineError(f"params '{where}': expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise PipelineError(f"params '{where}': expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise PipelineError(f"params '{where}': expected a string, got {value!r}")
        return value
    return value


def check(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless condition holds; used in dataclass __post_init__."""
    if not condition:
        raise ValueError(message)
