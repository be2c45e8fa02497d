"""``neurofm list``: registered models, tokenizers, objectives and datasets."""

from __future__ import annotations

from typing import Literal


def list_entries(
    kind: Literal["all", "models", "tokenizers", "objectives", "datasets"] = "all",
) -> None:
    """List registered entries with their one-line summary.

    Args:
        kind: which registry to list.
    """
    from neurofm.registry import REGISTRIES

    kinds = list(REGISTRIES) if kind == "all" else [kind]
    for name in kinds:
        registry = REGISTRIES[name]
        try:
            entries = registry.entries()
        except ModuleNotFoundError as err:
            print(f"{name}: unavailable ({err})")
            continue
        print(f"{name} ({len(entries)}):")
        for entry in entries:
            presets = sorted(getattr(entry.config_cls, "PRESETS", {}) or {})
            extra = f"  [presets: {', '.join(presets)}]" if presets else ""
            print(f"  {entry.name:<24} {entry.summary}{extra}")
