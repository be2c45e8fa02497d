"""``neurofm list``: registered models, tokenizers, objectives, datasets and preprocessing steps.

``neurofm list --markdown`` prints the models table of ``docs/models.md`` (between its
``models-table`` markers), generated from the registry: each model's spec, presets and aliases.
``neurofm list --kind preprocessing --markdown`` prints the steps table of
``docs/preprocessing.md`` (between its ``steps-table`` markers). Tests check both files are
current.
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
    "spike_events": "spikes (B, N, 2 + F)",
    "binned_counts": "counts (B, T, U)",
    "field_potentials": "LFP (B, C, T)",
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
    if spec.inputs in ("binned_counts", "spike_events") and spec.outputs == "prediction":
        outputs = "rates (B, T, U)"
    if spec.inputs == "field_potentials" and spec.outputs == "prediction":
        outputs = "band powers (B, T', C x 5)"
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


def _step_fields(entry: Any) -> str:
    """``name=default`` for each parameter of a preprocessing step (``name`` alone: required)."""
    import dataclasses

    parts = []
    for f in dataclasses.fields(entry.config_cls):
        if f.default is not dataclasses.MISSING:
            parts.append(f"{f.name}={f.default!r}")
        elif f.default_factory is not dataclasses.MISSING:
            parts.append(f"{f.name}={f.default_factory()!r}")
        else:
            parts.append(f.name)
    return ", ".join(parts)


def steps_markdown() -> str:
    """The preprocessing steps table (Markdown), one row per registered step."""
    from neurofm.preprocessing import STEPS

    lines = ["| step | what it does | parameters (defaults) |", "|---|---|---|"]
    for entry in STEPS.entries():
        what = entry.summary.replace("|", "\\|")
        params = _step_fields(entry).replace("|", "\\|")
        lines.append(f"| `{entry.name}` | {what} | {f'`{params}`' if params else '—'} |")
    return "\n".join(lines) + "\n"


def list_entries(
    kind: Literal["all", "models", "tokenizers", "objectives", "datasets", "preprocessing"] = "all",
    markdown: bool = False,
) -> None:
    """List registered entries with their one-line summary.

    Args:
        kind: which registry to list (``preprocessing``: the steps of ``neurofm prepare``'s
            ``preprocessing`` list, with their parameters).
        markdown: print the models table of docs/models.md (with ``--kind preprocessing``: the
            steps table of docs/preprocessing.md), generated from the registry.
    """
    from neurofm.preprocessing import STEPS
    from neurofm.registry import REGISTRIES

    if markdown:
        print(steps_markdown() if kind == "preprocessing" else models_markdown(), end="")
        return
    registries = {**REGISTRIES, "preprocessing": STEPS}
    kinds = list(registries) if kind == "all" else [kind]
    for name in kinds:
        registry = registries[name]
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
            if name == "preprocessing":
                print(f"  {'':<24}   ({_step_fields(entry)})")
