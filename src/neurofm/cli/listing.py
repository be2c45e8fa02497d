"""``neurofm list``: registered models, tokenizers, objectives and datasets.

``neurofm list --markdown`` prints the models table of ``docs/models.md`` (between its
``models-table`` markers), generated from the registry: each model's spec, presets and aliases.
A test checks the file is current.
"""

from __future__ import annotations

from typing import Any, Literal

SHAPES = {
    "channel_codes": "codes (B, C, T)",
    "token_sequence": "tokens (B, T)",
    "signal": "signal (B, C, T)",
    "sensor_grid": "grid (B, T, H, W)",
    "band_stack": "bands (B, L, C, T)",
    "band_codes": "band codes (B, N)",
    "spike_events": "spikes (B, N)",
    "binned_counts": "counts (B, T, U)",
    "signal_text": "signal + text",
    "logits": "logits (..., T, V)",
    "prediction": "prediction (B, C, T)",
    "noise": "noise (B, C, T)",
    "latents": "latents (B, T', D)",
    "class_logits": "class logits (B, K)",
    "text": "text logits (B, L, V)",
}


def _spec_cells(entry: Any) -> list[str]:
    """Cells describing the spec of ``entry`` built with its default config."""
    config = entry.config_cls(**entry.defaults) if entry.config_cls is not None else None
    spec = entry.spec_for(config)
    outputs = SHAPES[spec.outputs] + (" + log-variance" if spec.variance else "")
    if spec.inputs == "band_stack" and spec.outputs == "prediction":
        outputs = "prediction (B, L, C, T)"
    if spec.inputs == "band_codes" and spec.outputs == "logits":
        outputs = "logits (B, N, V)"
    return [
        f"{SHAPES[spec.inputs]} -> {outputs}",
        "yes" if spec.causal else "no",
        "yes" if spec.cache else "—",
        ", ".join(spec.context) or "—",
        spec.sampling,
    ]


def models_markdown() -> str:
    """The models table (Markdown) generated from the registry, one row per registered name."""
    from neurofm.registry import MODELS

    lines = [
        "| name | what it is | input -> output | causal | cache | context (default config) "
        "| sampling | presets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in MODELS.entries():
        presets = ", ".join(sorted(getattr(entry.config_cls, "PRESETS", {}) or {}))
        what = entry.summary.replace("|", "\\|")
        if entry.alias_of is not None:
            settings = ", ".join(f"`{k}: {v}`" for k, v in entry.defaults.items())
            what = f"alias of `{entry.alias_of}`" + (f" with {settings}" if settings else "")
        cells = [f"`{entry.name}`", what, *_spec_cells(entry), presets]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def list_entries(
    kind: Literal["all", "models", "tokenizers", "objectives", "datasets"] = "all",
    markdown: bool = False,
) -> None:
    """List registered entries with their one-line summary.

    Args:
        kind: which registry to list.
        markdown: print the models table of docs/models.md (generated from the registry).
    """
    from neurofm.registry import REGISTRIES

    if markdown:
        print(models_markdown(), end="")
        return
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
            alias = f"  (alias of {entry.alias_of})" if entry.alias_of else ""
            print(f"  {entry.name:<24} {entry.summary}{alias}{extra}")
