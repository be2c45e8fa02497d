"""Dataclass configs: from_dict / from_yaml / presets / dotted overrides / validation.

Every family has a typed dataclass config with named presets in a ``PRESETS`` class variable
(``tiny`` for tests, ``small``, ``base``). ``build_config`` turns a plain dict (from YAML and the
command line) into that dataclass and reports *every* problem at once, each naming the key path,
the allowed values and a close match (reliability test R12).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from neurofm.errors import ConfigError

C = TypeVar("C")

_NoneType = type(None)


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _close(name: str, allowed: list[str]) -> str:
    match = difflib.get_close_matches(str(name), [str(a) for a in allowed], n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


def _coerce(value: Any, tp: Any, path: str, problems: list[str]) -> Any:
    """Check ``value`` against the annotation ``tp``; return the (possibly converted) value."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        args = get_args(tp)
        if value is None and _NoneType in args:
            return None
        for arg in args:
            if arg is _NoneType:
                continue
            trial: list[str] = []
            out = _coerce(value, arg, path, trial)
            if not trial:
                return out
        problems.append(
            f"{path}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}"
        )
        return value
    if origin is Literal:
        allowed = list(get_args(tp))
        if value not in allowed:
            problems.append(
                f"{path}: invalid value {value!r}; allowed: {', '.join(repr(a) for a in allowed)}"
                + _close(str(value), [str(a) for a in allowed])
            )
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            problems.append(f"{path}: expected a mapping for {tp.__name__}, got {value!r}")
            return value
        return _from_dict(tp, dict(value), path, problems)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{path}: expected a list, got {type(value).__name__} {value!r}")
            return value
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                problems.append(f"{path}: expected {len(args)} items, got {len(value)}")
                return value
            items = [
                _coerce(v, a, f"{path}[{i}]", problems) for i, (v, a) in enumerate(zip(value, args))
            ]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(v, item_tp, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else list(items)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            problems.append(f"{path}: expected a mapping, got {value!r}")
            return value
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, vt, f"{path}.{k}", problems) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        problems.append(f"{path}: expected bool (true/false), got {value!r}")
        return value
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        problems.append(f"{path}: expected int, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        problems.append(f"{path}: expected float, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if isinstance(value, str):
            return value
        problems.append(f"{path}: expected str, got {type(value).__name__} {value!r}")
        return value
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        problems.append(f"{path}: expected a path, got {value!r}")
        return value
    return value


def _from_dict(cls: type[C], data: dict[str, Any], prefix: str, problems: list[str]) -> C:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    presets: dict[str, dict[str, Any]] = getattr(cls, "PRESETS", {}) or {}
    data = dict(data)
    preset = data.pop("preset", None)
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in presets:
            allowed = sorted(presets)
            problems.append(
                f"{prefix + '.' if prefix else ''}preset: unknown preset {preset!r}; allowed: "
                f"{', '.join(allowed) or '(none)'}" + _close(str(preset), allowed)
            )
        else:
            values.update(presets[preset])
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            allowed = sorted(fields)
            problems.append(
                f"{path}: unknown key; allowed: {', '.join(allowed)}" + _close(key, allowed)
            )
            continue
        values[key] = value
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        out[key] = _coerce(value, hints.get(key, Any), path, problems)
    missing = [
        n
        for n, f in fields.items()
        if n not in out
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    for name in missing:
        problems.append(f"{prefix + '.' if prefix else ''}{name}: required key is missing")
    if problems:
        return None  # type: ignore[return-value]
    try:
        return cls(**out)
    except (ValueError, TypeError) as err:
        problems.append(f"{prefix or cls.__name__}: {err}")
        return None  # type: ignore[return-value]


def build_config(
    cls: type[C],
    data: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
    prefix: str = "",
    **overrides: Any,
) -> C:
    """Build the dataclass ``cls`` from ``data`` (plus keyword overrides), validating everything.

    ``data`` may hold ``preset: NAME`` to start from ``cls.PRESETS[NAME]``. Raises one
    ConfigError listing every problem.
    """
    merged = dict(data or {})
    merged.update(overrides)
    problems: list[str] = []
    cfg = _from_dict(cls, merged, prefix, problems)
    if problems:
        raise ConfigError(problems, source=source)
    return cfg


def preset(cls: type[C], name: str, **overrides: Any) -> C:
    """The named preset of ``cls`` with optional overrides, e.g. ``preset(GPTConfig, 'tiny')``."""
    return build_config(cls, {"preset": name, **overrides})


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as a plain dict of YAML-safe values."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(cfg)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config file: {err.strerror}", source=str(path)) from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML: {err}", source=str(path)) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"top level must be a mapping, got {type(data).__name__}", source=str(path)
        )
    return data


def save_yaml(data: Mapping[str, Any], path: str | Path) -> None:
    """Write ``data`` as YAML (used to store every run's resolved config)."""
    import yaml

    Path(path).write_text(yaml.safe_dump(to_dict(dict(data)), sort_keys=False))


def parse_override_value(text: str) -> Any:
    """Parse a command-line value with YAML rules (``4`` -> int, ``[1,2]`` -> list, ``x`` -> str)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply dotted overrides (``{"model.n_layers": 4}``) to a nested dict, returning a copy."""
    import copy

    out = copy.deepcopy(data)
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        node = out
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{dotted}: {key!r} is not a section (it holds {child!r})")
            node = child
        node[keys[-1]] = value
    return out


def from_yaml(cls: type[C], path: str | Path, overrides: Mapping[str, Any] | None = None) -> C:
    """Load ``cls`` from a YAML file with optional dotted overrides."""
    data = apply_overrides(load_yaml(path), dict(overrides or {}))
    return build_config(cls, data, source=str(path))
