"""Checks of a fit config that span sections or depend on the machine, run before anything starts.

:func:`~neurofm.training.config.validate_fit_config` checks each section alone; the rules here
need several sections (the model's spec against the objective, the tokenizer and the window), the
hardware (accelerator, device count, precision) or the prepared data (batches per epoch, channel
count). Each returns one line per problem, naming the key path, so that every problem is reported
at once in one :class:`~neurofm.errors.ConfigError` (reliability tests R12 and R18).
"""

from __future__ import annotations

import os
from typing import Any

from neurofm.config import build_config
from neurofm.registry import MODELS, OBJECTIVES
from neurofm.types import ModelSpec

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
"""Values of ``trainer.accelerator`` (``gpu`` is Lightning's alias of ``cuda``)."""


def _available(accelerator: str) -> tuple[bool, int]:
    """Whether ``accelerator`` exists on this machine, and how many devices it has."""
    import torch

    if accelerator in ("gpu", "cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return n > 0, n
    if accelerator == "mps":
        ok = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
        return ok, int(ok)
    if accelerator == "tpu":
        return False, 0
    return True, os.cpu_count() or 1


def _requested_devices(devices: int | str, key: str, problems: list[str]) -> int | None:
    """The number of devices ``trainer.devices`` asks for (None for "auto" or all, -1)."""
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1"):
            return None
        parts = [p for p in text.split(",") if p.strip()]
        if parts and all(p.strip().isdigit() for p in parts):
            return len(parts) if len(parts) > 1 or "," in text else int(parts[0])
        problems.append(
            f"{key}: invalid value {devices!r}; allowed: 'auto', a number of devices, or "
            "device indices such as '0,1'"
        )
        return None
    if devices == -1:
        return None
    if devices < 1:
        problems.append(f"{key}: must be >= 1, -1 (all) or 'auto', got {devices}")
        return None
    return devices


def hardware_problems(trainer: Any, *, machine: bool = True) -> list[str]:
    """Problems of ``trainer.accelerator``, ``trainer.devices`` and ``trainer.precision`` on this
    machine: an unknown accelerator, one that is not present, more devices than exist, a
    precision the accelerator does not run. With ``machine=False`` only what holds on any
    machine is checked (known accelerator, device count form, validation interval)."""
    import torch

    problems: list[str] = []
    interval = trainer.val_check_interval
    if isinstance(interval, float) and not 0.0 < interval <= 1.0:
        problems.append(
            f"trainer.val_check_interval: {interval} is a fraction of an epoch and must be in "
            "(0, 1]; give an int to count training batches"
        )
    if isinstance(interval, int) and interval < 1:
        problems.append(f"trainer.val_check_interval: must be >= 1 batches, got {interval}")
    accelerator = str(trainer.accelerator).lower()
    if accelerator not in ACCELERATORS:
        from neurofm.config import _close

        problems.append(
            f"trainer.accelerator: unknown accelerator {trainer.accelerator!r}; allowed: "
            + ", ".join(ACCELERATORS)
            + _close(accelerator, list(ACCELERATORS))
        )
        return problems
    if not machine:
        _requested_devices(trainer.devices, "trainer.devices", problems)
        return problems
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    present, count = _available(accelerator)
    if not present:
        problems.append(
            f"trainer.accelerator: {trainer.accelerator!r} is not available on this machine "
            f"(no {accelerator.upper()} device found); use 'cpu' or 'auto'"
        )
        return problems
    requested = _requested_devices(trainer.devices, "trainer.devices", problems)
    if requested is not None and requested > count:
        what = "CPU cores" if accelerator == "cpu" else f"{accelerator} devices"
        problems.append(
            f"trainer.devices: {requested} requested, but this machine has {count} {what}; "
            f"use at most {count} (or 'auto')"
        )
    if accelerator == "cpu" and trainer.precision == "16-mixed":
        problems.append(
            "trainer.precision: '16-mixed' runs on GPUs only; on the CPU use '32-true' or "
            "'bf16-mixed'"
        )
    if (
        accelerator in ("gpu", "cuda")
        and trainer.precision.startswith("bf16")
        and not torch.cuda.is_bf16_supported()
    ):
        problems.append(
            f"trainer.precision: {trainer.precision!r} needs a GPU with bfloat16 support; "
            "use '16-mixed' or '32-true'"
        )
    return problems


def model_spec_of(model: dict[str, Any]) -> ModelSpec | None:
    """The spec of the model a resolved ``model`` section builds (None when it cannot be had)."""
    try:
        entry = MODELS.get(model["name"])
        fields = {k: v for k, v in model.items() if k != "name"}
        config = build_config(entry.config_cls, fields) if entry.config_cls else None
        return entry.spec_for(config)
    except Exception:  # noqa: BLE001 (the section's own problems are reported elsewhere)
        return None


def cross_section_problems(
    data: Any, model: dict[str, Any], objective: dict[str, Any], tokenizer: dict[str, Any] | None
) -> list[str]:
    """Rules between sections: the objective trains the model's kind, a tokenizer is given
    exactly when the model takes codes, the window fits the model's ``max_seq_len``."""
    problems: list[str] = []
    spec = model_spec_of(model) if model else None
    if spec is None:
        return problems
    if objective:
        cls = OBJECTIVES.get(objective["name"]).obj
        problems.extend(f"objective.name: {p}" for p in cls.problems_with(spec))
        kinds = getattr(cls, "input_kinds", ())
        if tokenizer is not None and kinds and set(kinds) <= {"signal"}:
            problems.append(
                f"tokenizer: objective {objective['name']!r} trains on the float signal and "
                "takes no tokenizer; remove the tokenizer section (or use objective next_token "
                "with a model over codes)"
            )
    codes = spec.inputs in ("channel_codes", "token_sequence", "band_codes")
    if codes and tokenizer is None:
        problems.append(f"tokenizer: model {model['name']!r} takes {spec.inputs}; add one")
    if not codes and tokenizer is not None and spec.inputs == "signal":
        problems.append(
            f"tokenizer: model {model['name']!r} takes a float signal; remove the tokenizer"
        )
    length = getattr(data, "window_length", None)
    if (
        data is not None
        and length is not None
        and spec.max_seq_len is not None
        and spec.inputs in ("channel_codes", "signal")
        and length > spec.max_seq_len
    ):
        problems.append(
            f"data.window_length: {length} samples exceed the model's "
            f"max_seq_len={spec.max_seq_len} (model.max_seq_len)"
        )
    return problems


def batches_per_epoch(data: Any, n_train_windows: int) -> int:
    """Training batches in one epoch of one process."""
    if data.drop_last:
        return n_train_windows // data.batch_size
    return -(-n_train_windows // data.batch_size)


def epochs_for_steps(trainer: Any, per_epoch: int) -> int | None:
    """The epochs ``trainer.max_steps`` optimizer steps take in one process (None when the run
    is bounded by epochs, or runs on several devices, where an epoch is shared)."""
    single = str(trainer.devices) in ("1", "auto") and trainer.num_nodes == 1
    if trainer.max_steps == -1 or trainer.max_epochs is not None or not single or per_epoch < 1:
        return None
    if str(trainer.devices) == "auto" and str(trainer.accelerator).lower() not in ("cpu",):
        return None  # "auto" devices on an accelerator may mean several
    return -(-trainer.max_steps * trainer.accumulate_grad_batches // per_epoch)


def batch_problems(trainer: Any, data: Any, n_train_windows: int) -> list[str]:
    """Problems of the validation interval against the training batches the data give."""
    problems: list[str] = []
    per_epoch = batches_per_epoch(data, n_train_windows)
    if per_epoch < 1:
        problems.append(
            f"data.batch_size: {data.batch_size} is larger than the {n_train_windows} windows of "
            f"split {data.train_split!r}, and drop_last leaves no batch"
        )
        return problems
    interval = trainer.val_check_interval
    if not isinstance(interval, int) or isinstance(interval, bool):
        return problems
    if data.val_split is None:
        problems.append(
            "trainer.val_check_interval: given, but data.val_split is null (nothing to validate)"
        )
        return problems
    if trainer.max_steps != -1:
        total = trainer.max_steps * trainer.accumulate_grad_batches
    else:
        total = per_epoch * (trainer.max_epochs or 1)
    if interval > total:
        problems.append(
            f"trainer.val_check_interval: {interval} training batches, but the run trains "
            f"{total} batches in all ({per_epoch} per epoch of split {data.train_split!r}); "
            f"validation would never run: use at most {total}"
        )
    return problems
