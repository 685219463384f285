"""Typed configuration: dataclasses loaded from YAML with strict checking.

Unknown keys, wrong types and bad ``key.path=value`` overrides are errors, so a
typo in a recipe config never silently falls back to a default.
"""

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import (
    Any,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

import yaml

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "from_dict",
    "to_dict",
    "load_yaml",
    "save_yaml",
    "apply_overrides",
    "add_config_flags",
    "config_from_flags",
]


class ConfigError(ValueError):
    """A configuration value or key is invalid."""


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(cast(Type[Any], annotation), value, where)
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
    names = {f.name for f in dataclasses.fields(cast(Type[Any], cls))}
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


# argparse dest prefix of the flags made by add_config_flags.
_FLAG_DEST = "config:"


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` for ``Optional[X]``, else the annotation itself."""
    if typing.get_origin(annotation) is Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _leaf_fields(
    cls: Type[Any], prefix: Tuple[str, ...] = ()
) -> Iterator[Tuple[Tuple[str, ...], Any]]:
    """(key path, annotation) of every non-dataclass field, nested ones flattened."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        inner = _unwrap_optional(hints[f.name])
        if dataclasses.is_dataclass(inner):
            yield from _leaf_fields(cast(Type[Any], inner), prefix + (f.name,))
        else:
            yield prefix + (f.name,), hints[f.name]


def _flag_value(text: str) -> Any:
    """A command-line value as YAML (``none`` is None too); types are checked later."""
    if text.strip().lower() == "none":
        return None
    return yaml.safe_load(text)


def add_config_flags(
    parser: argparse.ArgumentParser, cls: Type[Any], skip: Sequence[str] = ()
) -> None:
    """Adds one ``--kebab-name`` flag per leaf field of dataclass ``cls``.

    Nested dataclass fields are flattened by their leaf name (``beams.
    search_beam`` is ``--search-beam``); list fields take several values.
    Flags that are not given stay out of the namespace, so
    :func:`config_from_flags` overrides only what the user typed.

    Args:
      parser: the script's parser.
      cls: the options dataclass.
      skip: leaf names the script defines itself (or does not offer).
    """
    defaults: Any = to_dict(cls())
    for path, annotation in _leaf_fields(cls):
        if path[-1] in skip:
            continue
        default = defaults
        for part in path:
            default = default.get(part) if isinstance(default, dict) else None
        list_type = typing.get_origin(_unwrap_optional(annotation)) in (list, List)
        shown = "unset" if default is None else default
        parser.add_argument(
            "--" + path[-1].replace("_", "-"),
            dest=_FLAG_DEST + ".".join(path),
            type=_flag_value,
            nargs="+" if list_type else None,
            default=argparse.SUPPRESS,
            metavar=path[-1].upper(),
            help=f"{'.'.join(path)} (default {shown})",
        )


def _merge(data: Dict[str, Any], update: Dict[str, Any], where: str) -> None:
    """Deep-merges ``update`` into ``data``; a key ``data`` lacks is an error."""
    for key, value in update.items():
        if key not in data:
            raise ConfigError(f"{where}: unknown key {key!r}; known: {sorted(data)}")
        if isinstance(value, dict) and isinstance(data[key], dict):
            _merge(data[key], value, f"{where}.{key}")
        else:
            data[key] = value


def config_from_flags(
    cls: Type[T],
    args: argparse.Namespace,
    base: Optional[T] = None,
    config_file: Optional[Union[str, Path]] = None,
    section: Optional[str] = None,
) -> T:
    """Options from defaults, a YAML file and command-line flags, in that order.

    Args:
      cls: the options dataclass.
      args: parsed flags of :func:`add_config_flags`.
      base: the defaults (e.g. beams from a checkpoint); None for ``cls()``.
      config_file: a YAML file whose ``section`` (or top level) gives
        options; unknown keys are errors, missing ones keep ``base``.
      section: the key of the file that holds these options.
    Returns:
      The checked ``cls``.
    Raises:
      ConfigError: on an unknown key, a wrong type or a value a check rejects.
    """
    data = to_dict(base if base is not None else cls())
    where = cls.__name__
    if config_file is not None:
        with open(config_file) as f:
            loaded = yaml.safe_load(f) or {}
        where = str(config_file)
        if section is not None:
            if not isinstance(loaded, dict) or section not in loaded:
                raise ConfigError(f"{config_file}: no {section!r} section")
            loaded = loaded[section]
            where = f"{config_file}:{section}"
        if not isinstance(loaded, dict):
            raise ConfigError(f"{where}: expected a mapping")
        _fill_optional_sections(cls, data, loaded)
        _merge(data, loaded, where)
    flags = {
        k[len(_FLAG_DEST) :]: v
        for k, v in vars(args).items()
        if k.startswith(_FLAG_DEST)
    }
    for path, value in flags.items():
        node = data
        parts = path.split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return from_dict(cls, data, where)


def _fill_optional_sections(
    cls: Type[Any], data: Dict[str, Any], update: Dict[str, Any]
) -> None:
    """Gives unset (None) nested sections that ``update`` fills an empty mapping."""
    hints = typing.get_type_hints(cls)
    for key, value in update.items():
        inner = _unwrap_optional(hints.get(key)) if key in hints else None
        if isinstance(value, dict) and dataclasses.is_dataclass(inner):
            if data.get(key) is None:
                data[key] = {}
            _fill_optional_sections(cast(Type[Any], inner), data[key], value)
