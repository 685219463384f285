"""Typed configuration: dataclasses loaded from YAML with strict checking.

Unknown keys, wrong types and bad ``key.path=value`` overrides are errors, so a
typo in a recipe config never silently falls back to a default.
"""

import dataclasses
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional, Type, TypeVar, Union

import yaml

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "from_dict",
    "to_dict",
    "load_yaml",
    "save_yaml",
    "apply_overrides",
]


class ConfigError(ValueError):
    """A configuration value or key is invalid."""


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if origin is Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError("; ".join(errors) or f"{where}: bad value {value!r}")
    if origin in (list, List):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is Path and isinstance(value, str):
        return Path(value)
    if annotation in (int, float, str, bool):
        if type(value) is not annotation:
            want, got = annotation.__name__, type(value).__name__
            raise ConfigError(f"{where}: expected {want}, got {got} {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {annotation!r}")


def from_dict(cls: Type[T], data: Dict[str, Any], where: str = "config") -> T:
    """Builds dataclass ``cls`` from a mapping; unknown keys are errors.

    Args:
      cls: a dataclass type, possibly with nested dataclass fields.
      data: the mapping, e.g. loaded from YAML.
      where: the key path, used in error messages.
    Returns:
      An instance of ``cls``.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:  # a check in the dataclass's __post_init__
        raise ConfigError(f"{where}: {e}") from None


def to_dict(obj: Any) -> Dict[str, Any]:
    """A plain, YAML-serialisable dict of a (nested) dataclass."""

    def plain(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(obj))


def apply_overrides(data: Dict[str, Any], overrides: List[str]) -> Dict[str, Any]:
    """Applies ``a.b.c=value`` overrides (values parsed as YAML) to a mapping.

    The key path must already exist in ``data``; checking against the dataclass
    happens when the result goes through :func:`from_dict`.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"override {item!r}: no section {part!r}")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {parts[-1]!r}")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_yaml(
    cls: Type[T], path: Union[str, Path], overrides: Optional[List[str]] = None
) -> T:
    """Loads ``cls`` from a YAML file, defaults filled in for missing keys."""
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    if overrides:
        # Overrides may name keys the file leaves at their defaults.
        full = to_dict(from_dict(cls, data, str(path)))
        data = apply_overrides(full, overrides)
    return from_dict(cls, data, str(path))


def save_yaml(obj: Any, path: Union[str, Path]) -> None:
    """Writes a dataclass as YAML, atomically."""
    from asrk2.utils import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(to_dict(obj), sort_keys=False))
