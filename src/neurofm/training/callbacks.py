"""Callbacks and checkpoint I/O that make a run resumable exactly.

- :class:`SafeCheckpointIO` is Lightning's checkpoint I/O: the checkpoint Lightning assembles
  (loops, optimizer, scheduler, callbacks, data position) is written as a checkpoint folder of
  :mod:`neurofm.training.checkpoint` (weights as safetensors, the rest as plain data), atomically.
- :class:`RNGState` saves the torch (CPU and CUDA), numpy and python RNG states in every
  checkpoint and restores them just before the first batch trained after a resume, so that
  dropout draws the same numbers as an uninterrupted run.
- :class:`StepCheckpoint` writes a checkpoint every N optimizer steps and at the end of training,
  refuses to write one from non-finite weights, prunes old ones, and saves the final model in
  the model hub form.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.callbacks import RichProgressBar

from neurofm.errors import TrainingError
from neurofm.fileio import atomic_open
from neurofm.training.checkpoint import load_checkpoint, prune_checkpoints, save_checkpoint
from neurofm.training.metrics_log import AppendingCSVLogger
from neurofm.training.pretrained import save_pretrained
from neurofm.training.run_folder import (
    BEST_DIR,
    BEST_FILE,
    CHECKPOINTS_DIR,
    MODEL_DIR,
    checkpoint_name,
)

_MODEL_PREFIX = "model."


class SafeCheckpointIO(CheckpointIO):
    """Lightning checkpoint I/O writing neurofm checkpoint folders (see the module docstring)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        path = Path(path)
        state = dict(checkpoint)
        module_state = state.pop("state_dict")
        weights = {
            k[len(_MODEL_PREFIX) :]: v
            for k, v in module_state.items()
            if k.startswith(_MODEL_PREFIX)
        }
        state["module_state"] = {
            k: v for k, v in module_state.items() if not k.startswith(_MODEL_PREFIX)
        }
        step = int(checkpoint["global_step"])
        if path.name != checkpoint_name(step):
            raise ValueError(f"checkpoint path {path} must be named {checkpoint_name(step)}")
        save_checkpoint(
            path.parent,
            step,
            weights=weights,
            state=state,
            meta={"epoch": int(checkpoint["epoch"])},
        )

    def load_checkpoint(
        self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        weights, state, _ = load_checkpoint(path)
        module_state = {_MODEL_PREFIX + k: v for k, v in weights.items()}
        module_state.update(state.pop("module_state", {}))
        state["state_dict"] = module_state
        return state

    def remove_checkpoint(self, path: str | Path) -> None:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def rng_states() -> dict[str, Any]:
    """The torch, CUDA, numpy and python RNG states as plain data (loadable weights-only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (global RNG)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict[str, Any]) -> None:
    """Restore the states returned by :func:`rng_states`."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    legacy = (
        np_state["kind"],
        np_state["keys"].numpy().astype(np.uint32),
        np_state["pos"],
        np_state["has_gauss"],
        np_state["cached_gaussian"],
    )
    np.random.set_state(legacy)  # noqa: NPY002 (the global RNG user code may draw from)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGState(pl.Callback):
    """Save the RNG states with every checkpoint; restore them before the first resumed batch."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return rng_states()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending is not None:
            set_rng_states(self._pending)
            self._pending = None


def epoch_description(current_epoch: int, max_epochs: int | None, epochs_needed: int | None) -> str:
    """``Epoch k/n`` for the progress bar: ``n`` from ``max_epochs``, or, for a run bounded by
    steps (Lightning's ``max_epochs`` is then -1 and would show ``k/-2``), from the epochs
    its steps take; ``Epoch k`` when neither is known."""
    total = max_epochs if max_epochs is not None and max_epochs > 0 else epochs_needed
    return f"Epoch {current_epoch}" + (f"/{total - 1}" if total else "")


class StepProgressBar(RichProgressBar):
    """Lightning's rich progress bar with a right epoch count for step-bounded runs."""

    def __init__(self, epochs_needed: int | None) -> None:
        super().__init__()
        self.epochs_needed = epochs_needed

    def _get_train_description(self, current_epoch: int) -> str:
        text = epoch_description(current_epoch, self.trainer.max_epochs, self.epochs_needed)
        if len(self.validation_description) > len(text):
            text = f"{text:{len(self.validation_description)}}"
        return text


class StepCheckpoint(pl.Callback):
    """Checkpoint every ``every_n_steps`` optimizer steps and at the end; save the final model.

    Parameters
    ----------
    run_dir : path
        The run folder; checkpoints go to ``<run_dir>/checkpoints``, the model to
        ``<run_dir>/model``.
    every_n_steps : int
        Optimizer steps between checkpoints.
    keep : int
        Newest complete checkpoints kept.
    """

    def __init__(self, run_dir: str | Path, *, every_n_steps: int, keep: int) -> None:
        self.run_dir = Path(run_dir)
        self.every_n_steps = every_n_steps
        self.keep = keep
        self.last_saved_step = -1
        self.pending_row: dict[str, float] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"pending_row": self.pending_row}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pending_row = state_dict.get("pending_row")

    @property
    def checkpoints_dir(self) -> Path:
        return self.run_dir / CHECKPOINTS_DIR

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.last_saved_step = trainer.global_step  # a resumed run starts at its checkpoint
        row, self.pending_row = self.pending_row, None
        if row is None or not trainer.is_global_zero:
            return
        # the row of the batch that reached the checkpoint is logged after the checkpoint hook:
        # a run killed in between resumes without it, so it travels in the checkpoint
        step = int(row.pop("step"))
        for logger in trainer.loggers:
            if isinstance(logger, AppendingCSVLogger) and not logger.has_row(step):
                logger.log_metrics(row, step=step)
                logger.save()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step
        if step % self.every_n_steps == 0 and step != self.last_saved_step:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step != self.last_saved_step:
            self.save(trainer, pl_module)
        if trainer.is_global_zero:
            save_pretrained(pl_module.model, self.run_dir / MODEL_DIR)

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write ``step-<global_step>`` unless the weights are not finite."""
        step = trainer.global_step
        bad = [name for name, p in pl_module.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise TrainingError(
                f"non-finite weights at step {step} ({', '.join(bad[:5])}); "
                "no checkpoint written, the last complete one is kept"
            )
        # rows logged so far reach metrics.csv before the checkpoint a resume starts from (a
        # resumed run logs only the steps after it; the logger would otherwise hold up to
        # log_every_n_steps rows in memory, lost with the process)
        for logger in trainer.loggers:
            logger.save()
        # the values of this batch's row (train/* keys; Lightning writes the row with step - 1)
        self.pending_row = {
            k: float(v) for k, v in trainer.logged_metrics.items() if k.startswith("train/")
        }
        self.pending_row.update(step=step - 1, epoch=trainer.current_epoch)
        trainer.save_checkpoint(self.checkpoints_dir / checkpoint_name(step), weights_only=False)
        self.last_saved_step = step
        if trainer.is_global_zero:
            prune_checkpoints(self.checkpoints_dir, self.keep)


class BestModel(pl.Callback):
    """Save the model to ``<run_dir>/best`` whenever ``val/loss`` reaches a new low.

    ``best.json`` beside it records the step and the loss; the lowest loss travels in
    checkpoints, so a resumed run keeps comparing against it.
    """

    def __init__(self, run_dir: str | Path, monitor: str = "val/loss") -> None:
        self.run_dir = Path(run_dir)
        self.monitor = monitor
        self.best: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        value = float(value)
        if not math.isfinite(value) or (self.best is not None and value >= self.best):
            return
        self.best = value
        if trainer.is_global_zero:
            folder = save_pretrained(pl_module.model, self.run_dir / BEST_DIR)
            meta = {"step": int(trainer.global_step), self.monitor: value}
            with atomic_open(folder / BEST_FILE, "w") as fh:
                json.dump(meta, fh, indent=2)
