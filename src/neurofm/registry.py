"""Explicit registries keyed by short names (``@MODELS.register("gpt2meg")``).

Configs name entries, never import paths. Each entry may carry a config dataclass so that a
YAML section like ``model: {name: gpt2meg, preset: tiny, n_layers: 4}`` can be validated before
anything is built.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from neurofm.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    """One registered object.

    Attributes
    ----------
    name : str
        The short name.
    obj : callable
        What builds the object: ``obj(config)`` (or ``obj()`` without a config class).
    config_cls : type or None
        The config dataclass validating the YAML section.
    summary : str
        First line of the object's docstring.
    spec : ModelSpec or callable (config) -> ModelSpec, optional
        What a model is (:class:`neurofm.types.ModelSpec`); a callable when it depends on the
        config (e.g. ``causal: false`` has no cache).
    defaults : dict
        Config values an alias sets before the section's own (``{"mlp": "moe"}``).
    alias_of : str or None
        The name this entry is an alias of (kept so that old configs and checkpoints load).
    """

    name: str
    obj: Any
    config_cls: type | None
    summary: str
    spec: Any = None
    defaults: dict[str, Any] = field(default_factory=dict)
    alias_of: str | None = None

    def spec_for(self, config: Any) -> Any:
        """The :class:`~neurofm.types.ModelSpec` of an object built with ``config``."""
        return self.spec(config) if callable(self.spec) else self.spec


class Registry:
    """A mapping from short names to builders of one kind (models, tokenizers, ...).

    Parameters
    ----------
    kind : str
        The kind, used in messages ("model", "tokenizer", ...).
    modules : list of str
        Modules imported the first time the registry is read, so that their
        ``@register`` decorators run. Keeps ``import neurofm`` light.
    """

    def __init__(self, kind: str, modules: list[str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._modules = list(modules or [])
        self._loaded = False

    def register(
        self, name: str, *, config: type | None = None, spec: Any = None
    ) -> Callable[[Any], Any]:
        """Decorator registering ``obj`` under ``name``.

        Parameters
        ----------
        name : str
            Short name used by configs.
        config : dataclass type, optional
            The config class; the object is built as ``obj(config)``.
        spec : ModelSpec or callable (config) -> ModelSpec, optional
            Required for models: what the model is (see :class:`neurofm.types.ModelSpec`).
        """
        _check_name(self.kind, name)
        if self.kind == "model" and spec is None:
            raise ValueError(f"model {name!r}: register it with spec=ModelSpec(...)")

        def decorator(obj: Any) -> Any:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
            self._entries[name] = Entry(name, obj, config, doc[0] if doc else "", spec)
            return obj

        return decorator

    def alias(self, name: str, target: str, *, defaults: dict[str, Any] | None = None) -> None:
        """Register ``name`` as another name of ``target``, with config values it sets first.

        Used when a family absorbs a variant as a config value: the old name keeps building the
        same model, so configs and checkpoints that name it keep loading. Call it in the module
        that registers ``target``, after the registration.
        """
        _check_name(self.kind, name)
        if target not in self._entries:
            raise ValueError(f"{self.kind} alias {name!r}: {target!r} is not registered")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        base = self._entries[target]
        self._entries[name] = Entry(
            name,
            base.obj,
            base.config_cls,
            base.summary,
            base.spec,
            {**base.defaults, **(defaults or {})},
            base.alias_of or target,
        )

    def add_modules(self, *modules: str) -> None:
        """Declare more modules whose import registers entries."""
        self._modules.extend(m for m in modules if m not in self._modules)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._modules:
            importlib.import_module(module)

    def get(self, name: str) -> Entry:
        """Return the entry named ``name`` or raise a ConfigError naming close matches."""
        self._load()
        if name not in self._entries:
            raise ConfigError(unknown_name_message(self.kind, name, list(self._entries)))
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return list(self)

    def entries(self) -> list[Entry]:
        """All entries, sorted by name."""
        return [self._entries[n] for n in self]


def _check_name(kind: str, name: str) -> None:
    if not name or name != name.strip() or " " in name:
        raise ValueError(f"{kind} name must be a non-empty word, got {name!r}")


def unknown_name_message(kind: str, name: str, allowed: list[str], key: str | None = None) -> str:
    """A message for an unknown choice: names the key, the allowed values and a close match."""
    close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    where = f"{key}: " if key else ""
    return f"{where}unknown {kind} {name!r}; allowed: {', '.join(sorted(allowed))}{hint}"


MODELS = Registry("model", ["neurofm.models"])
TOKENIZERS = Registry("tokenizer", ["neurofm.tokenizers"])
OBJECTIVES = Registry("objective", ["neurofm.objectives"])
DATASETS = Registry("dataset", ["neurofm.data.recipes"])

REGISTRIES = {
    "models": MODELS,
    "tokenizers": TOKENIZERS,
    "objectives": OBJECTIVES,
    "datasets": DATASETS,
}


def create(
    registry: Registry, spec: dict[str, Any] | str, *, key: str | None = None, **overrides: Any
) -> Any:
    """Build a registered object from ``{"name": ..., "preset": ..., <config fields>}``.

    The entry's config dataclass validates the fields (every problem reported at once, each with
    its key path under ``key``); the object is then built as ``obj(config)`` and remembers its
    registry name in ``registry_name`` (used by ``save_pretrained``).
    """
    from neurofm.config import build_config

    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    spec.update(overrides)
    name = spec.pop("name", None)
    where = key or registry.kind
    if name is None:
        raise ConfigError(
            f"{where}.name: required key is missing; allowed: {', '.join(registry.names())}"
        )
    if name not in registry:
        raise ConfigError(
            unknown_name_message(registry.kind, name, registry.names(), f"{where}.name")
        )
    entry = registry.get(name)
    spec = {**entry.defaults, **spec}
    if entry.config_cls is None:
        if spec:
            raise ConfigError(
                f"{where}: {registry.kind} {name!r} takes no options, got {sorted(spec)}"
            )
        obj = entry.obj()
    else:
        cfg = build_config(entry.config_cls, spec, prefix=where)
        obj = entry.obj(cfg)
    with contextlib.suppress(AttributeError):  # objects with __slots__ cannot remember it
        obj.registry_name = name
    return obj


def model_entry(model: Any) -> Entry:
    """The ``MODELS`` entry a built model comes from (by the name ``create`` gave it, else by its
    class, preferring the entry that is not an alias)."""
    name = getattr(model, "registry_name", None)
    if name is not None and name in MODELS:
        return MODELS.get(name)
    entries = [e for e in MODELS.entries() if e.obj is type(model)]
    if not entries:
        raise ConfigError(
            f"{type(model).__name__} is not a registered model; register it with "
            "@MODELS.register(name, config=..., spec=ModelSpec(...))"
        )
    return sorted(entries, key=lambda e: e.alias_of is not None)[0]


def model_spec(model: Any) -> Any:
    """The :class:`~neurofm.types.ModelSpec` of a built model (resolved with its ``config``)."""
    return model_entry(model).spec_for(getattr(model, "config", None))
