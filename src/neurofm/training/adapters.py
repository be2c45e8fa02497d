"""Adapters of a pretrained model, saved and loaded on their own: LoRA (through ``peft``) and
NeuroFM-X's Unit-ID adapter.

An adapter folder holds only the adapter, small next to the model::

    adapter_config.json    {"kind": "lora" | "unit_id", "config": {...}, "base": <model name>,
                            "neurofm_version": ...}
    adapter.safetensors    the adapter's weights

``load_adapter(directory, base)`` puts it back onto a base model (built with
:func:`~neurofm.training.pretrained.from_pretrained` or ``from_config``): LoRA layers are
injected into the base model in place and the model is returned; a Unit-ID adapter returns a
:class:`~neurofm.models.neurofm_x.adapters.UnitAdaptedNeuroFMX` over the (frozen) base.

LoRA: :func:`add_lora` injects low-rank updates into the linear layers named by
``target_modules`` (``peft.inject_adapter_in_model``) and freezes everything else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save
from torch import nn

from neurofm._version import __version__
from neurofm.errors import CheckpointError, require_extra
from neurofm.fileio import atomic_open, write_json_atomic
from neurofm.models.neurofm_x.adapters import UnitAdaptedNeuroFMX, UnitAdapter, UnitAdapterConfig
from neurofm.training.checkpoint import load_weights, plain_tensors
from neurofm.training.pretrained import registry_name

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter.safetensors"
LORA_MARK = "lora_"  # peft's LoRA parameters carry it in their names


@dataclass
class LoraSettings:
    """What :func:`add_lora` injects (``peft.LoraConfig`` fields)."""

    r: int = 8  # rank of the update
    alpha: int = 16  # scale numerator: the update is (alpha / r) B A
    dropout: float = 0.0  # dropout on the LoRA branch input
    target_modules: tuple[str, ...] = ("in_proj", "out_proj", "q_proj", "kv_proj")  # module names

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
        if self.r < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1 or not self.target_modules:
            raise ValueError(
                f"LoraSettings: need r >= 1, alpha > 0, 0 <= dropout < 1 and target_modules; got "
                f"{asdict(self)}"
            )


def add_lora(model: nn.Module, settings: LoraSettings | None = None) -> nn.Module:
    """Inject LoRA into ``model`` in place (through ``peft``); only LoRA parameters then train."""
    settings = settings or LoraSettings()
    peft = require_extra("peft", "ssm")
    config = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
    )
    model = peft.inject_adapter_in_model(config, model)
    for name, param in model.named_parameters():
        param.requires_grad_(LORA_MARK in name)
    model.lora_settings = settings
    return model


def adapter_state(model_or_adapter: nn.Module) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(kind, config, weights) of the adapter in ``model_or_adapter``."""
    if isinstance(model_or_adapter, UnitAdaptedNeuroFMX):
        adapter = model_or_adapter.adapter
        return "unit_id", asdict(adapter.config), adapter.state_dict()
    settings = getattr(model_or_adapter, "lora_settings", None)
    if settings is None:
        raise CheckpointError(
            f"{type(model_or_adapter).__name__} holds no adapter: use add_lora or "
            "UnitAdaptedNeuroFMX"
        )
    peft = require_extra("peft", "ssm")
    weights = peft.get_peft_model_state_dict(model_or_adapter)
    return "lora", asdict(settings), weights


def save_adapter(model_or_adapter: nn.Module, directory: str | Path) -> Path:
    """Write only the adapter of ``model_or_adapter`` into ``directory`` (see the module doc)."""
    kind, config, weights = adapter_state(model_or_adapter)
    base = model_or_adapter.base if kind == "unit_id" else model_or_adapter
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_open(directory / ADAPTER_WEIGHTS, "wb") as fh:
        fh.write(save(plain_tensors(weights)))
    write_json_atomic(
        directory / ADAPTER_CONFIG,
        {
            "kind": kind,
            "config": config,
            "base": registry_name(base),
            "neurofm_version": __version__,
        },
    )
    return directory


def load_adapter(directory: str | Path, base: nn.Module) -> nn.Module:
    """Put the adapter saved in ``directory`` onto ``base``; errors name the file."""
    directory = Path(directory)
    path = directory / ADAPTER_CONFIG
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: no saved adapter here") from err
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if meta.get("kind") not in ("lora", "unit_id") or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: needs 'kind' (lora or unit_id) and a 'config' object")
    if meta.get("base") != registry_name(base):
        raise CheckpointError(
            f"{path}: the adapter was made for model {meta.get('base')!r}, not "
            f"{registry_name(base)!r}"
        )
    weights = load_weights(directory / ADAPTER_WEIGHTS)
    try:
        if meta["kind"] == "unit_id":
            adapter = UnitAdapter(UnitAdapterConfig(**meta["config"]))
            adapter.load_state_dict(weights, strict=True)
            return UnitAdaptedNeuroFMX(base, adapter)
        model = add_lora(base, LoraSettings(**meta["config"]))
        peft = require_extra("peft", "ssm")
        result = peft.set_peft_model_state_dict(model, weights)
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{directory}: the adapter does not fit the model: {err}") from err
    if result.unexpected_keys:
        raise CheckpointError(
            f"{directory / ADAPTER_WEIGHTS}: weights not in the model: {result.unexpected_keys}"
        )
    return model
