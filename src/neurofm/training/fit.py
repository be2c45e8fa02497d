"""``fit(config)``: validate a fit config, build everything, train with Lightning, write a run.

The run folder format is described in :mod:`neurofm.training.run`. Everything is validated
before training starts: the config sections (every problem at once, with key paths), the store
and its splits, the tokenizer, and the fit between the data, the tokenizer and the model (channel
count, vocabulary size).
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import nn

from neurofm._version import __version__
from neurofm.config import load_yaml, save_yaml
from neurofm.data.collate import collate
from neurofm.data.store import PreparedStore
from neurofm.errors import ConfigError
from neurofm.fileio import LOCK_FILE, check_writable, folder_lock
from neurofm.logging import get_logger
from neurofm.registry import MODELS, OBJECTIVES, TOKENIZERS, create, model_spec
from neurofm.tokenizers.base import Tokenizer, load_tokenizer
from neurofm.training.callbacks import (
    BestModel,
    RNGState,
    SafeCheckpointIO,
    StepCheckpoint,
    StepProgressBar,
)
from neurofm.training.checkpoint import latest_checkpoint, verify_checkpoint
from neurofm.training.compatibility import check_compatible
from neurofm.training.config import FitConfig, validate_fit_config
from neurofm.training.data import build_dataset, check_tokenizer_rate, open_data
from neurofm.training.datamodule import FitDataModule
from neurofm.training.metrics_log import AppendingCSVLogger, truncate_metrics
from neurofm.training.module import FitModule
from neurofm.training.preflight import batch_problems, batches_per_epoch, epochs_for_steps
from neurofm.training.run_folder import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_DIR,
    TENSORBOARD_DIR,
    TOKENIZER_DIR,
    checkpoint_step,
    write_metrics_json,
)
from neurofm.training.text_data import TextSegmentSource, prepare_text

log = get_logger("training")


class _DropAdvertisement(logging.Filter):
    """Drop Lightning's suggestion to install its hosted logger from every run's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropAdvertisement())

# Sections that must not change when a run is resumed (the trainer and output may).
_FIXED_ON_RESUME = ("data", "tokenizer", "model", "objective", "optim")


def _check_resume(cfg: FitConfig, run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (None for a new run); refuse to clobber an existing run."""
    latest = latest_checkpoint(run_dir / CHECKPOINTS_DIR)
    if not resume:
        if latest is not None or (run_dir / MODEL_DIR).exists():
            raise ConfigError(
                f"output.dir: {str(run_dir)!r} already holds a run "
                f"({latest.name if latest else 'a saved model'}); resume it with "
                "--resume true or choose another output.dir"
            )
        return None
    if latest is None:
        raise ConfigError(f"output.dir: {str(run_dir)!r} holds no complete checkpoint to resume")
    verify_checkpoint(latest)
    saved = load_yaml(run_dir / CONFIG_FILE)
    new = cfg.to_dict()
    changed = [key for key in _FIXED_ON_RESUME if saved.get(key) != new.get(key)]
    if changed:
        raise ConfigError(
            [
                f"{key}: differs from the run being resumed ({run_dir / CONFIG_FILE});"
                " resuming needs the same section"
                for key in changed
            ]
        )
    return latest


def _tokenizer(
    cfg: FitConfig, store: PreparedStore, run_dir: Path, resuming: bool
) -> Tokenizer | None:
    """Load the run's tokenizer, a saved one, or build one and fit it on the train split; it
    must suit the store's sampling rate (:meth:`Tokenizer.check_data`)."""
    section = cfg.tokenizer
    if section is None:
        return None
    if resuming:
        tokenizer = load_tokenizer(run_dir / TOKENIZER_DIR)
    elif "dir" in section:
        tokenizer = load_tokenizer(section["dir"])
    else:
        tokenizer = create(TOKENIZERS, section, key="tokenizer")
    check_tokenizer_rate(tokenizer, store)
    if not resuming and "dir" not in section and tokenizer.requires_fit:
        data = cfg.data
        windows = build_dataset(store, data, data.train_split)
        log.info("fitting tokenizer %r on %d train windows", section["name"], len(windows))
        tokenizer.fit(
            (windows[i]["x"].numpy() for i in range(len(windows))),
            fitted_on=f"{getattr(store, 'fingerprint', None) or store.root.name}:{data.train_split}",
        )
    return tokenizer


DATA_INIT_WINDOWS = 1024
"""Train windows (evenly spaced) given to a model's ``init_from_data``."""


def _init_from_data(
    model: nn.Module, datamodule: FitDataModule, tokenizer: Tokenizer | None
) -> None:
    """Call ``model.init_from_data`` (its spec says ``data_init``) on evenly spaced train
    windows, tokenized when the run has a tokenizer."""
    import numpy as np

    dataset = datamodule.train_dataset
    n = min(len(dataset), DATA_INIT_WINDOWS)
    indices = np.unique(np.linspace(0, len(dataset) - 1, n).round().astype(int))
    batch = collate([dataset[int(i)] for i in indices])
    if tokenizer is not None:
        batch.x = torch.as_tensor(tokenizer.encode(batch.x).codes)
    summary = model.init_from_data(batch)
    log.info("fit: model initialised from %d train windows: %s", len(indices), summary)


def _trainer(
    cfg: FitConfig, run_dir: Path, callbacks: list[pl.Callback], n_train_windows: int
) -> pl.Trainer:
    t = cfg.trainer
    loggers: list[Any] = [
        AppendingCSVLogger(
            save_dir=run_dir, name="", version="", flush_logs_every_n_steps=t.log_every_n_steps
        )
    ]
    if cfg.output.tensorboard:
        loggers.append(TensorBoardLogger(save_dir=run_dir, name=TENSORBOARD_DIR, version=""))
    all_callbacks = [
        RNGState(),
        StepCheckpoint(
            run_dir,
            every_n_steps=cfg.output.checkpoint_every_n_steps,
            keep=cfg.output.keep_checkpoints,
        ),
        *callbacks,
    ]
    if cfg.data.val_split is not None:
        all_callbacks.append(BestModel(run_dir))
    if t.early_stopping is not None:
        es = t.early_stopping
        all_callbacks.append(
            EarlyStopping(
                monitor=es.monitor,
                patience=es.patience,
                mode=es.mode,
                min_delta=es.min_delta,
                strict=True,
            )
        )
    max_epochs = t.max_epochs if (t.max_epochs is not None or t.max_steps != -1) else 1
    if t.enable_progress_bar and _rich_available():
        # a run bounded by steps shows "Epoch k/n" with the epochs its steps take (Lightning
        # shows n = -2 then); max_epochs stays unbounded, which exact resuming relies on
        needed = epochs_for_steps(t, batches_per_epoch(cfg.data, n_train_windows))
        all_callbacks.append(StepProgressBar(needed))
    optional = {
        key: value
        for key, value in (
            ("val_check_interval", t.val_check_interval),
            ("limit_val_batches", t.limit_val_batches),
        )
        if value is not None
    }
    if isinstance(t.val_check_interval, int):
        # every val_check_interval training batches counted across epochs (an epoch may be
        # shorter than the interval); Lightning's default counts within each epoch
        optional["check_val_every_n_epoch"] = None
    return pl.Trainer(
        max_steps=t.max_steps,
        max_epochs=max_epochs if max_epochs is not None else -1,
        precision=t.precision,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        log_every_n_steps=t.log_every_n_steps,
        deterministic=t.deterministic,
        enable_progress_bar=t.enable_progress_bar,
        callbacks=all_callbacks,
        logger=loggers,
        plugins=[SafeCheckpointIO()],
        enable_checkpointing=False,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        enable_model_summary=False,
        default_root_dir=run_dir,
        **optional,
    )


def _channel_names(dataset: Any) -> list[str] | None:
    """The channel names of a training dataset (a band dataset: of the windows it wraps)."""
    inner = getattr(dataset, "dataset", dataset)  # a LimitedDataset
    inner = getattr(inner, "windows", inner)  # a BandWindowDataset
    names = getattr(inner, "channel_names", None)
    return None if names is None else list(names)


def _rich_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("rich") is not None


def _tensorboard_available() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX"))


def fit(
    config: dict[str, Any],
    *,
    resume: bool = False,
    source: str | None = None,
    callbacks: list[pl.Callback] | None = None,
) -> Path:
    """Train a model as described by a fit config and write its run folder.

    Parameters
    ----------
    config : dict
        The sections ``data``, ``tokenizer``, ``model``, ``objective``, ``optim``, ``trainer``,
        ``output`` (see :mod:`neurofm.training.config`).
    resume : bool
        Continue the run in ``output.dir`` from its newest complete checkpoint, exactly.
    source : str, optional
        The config file, named in errors.
    callbacks : list of lightning Callback, optional
        Extra callbacks given to the Trainer.

    Returns
    -------
    Path
        The run folder (read it with :func:`neurofm.training.run.load_run`).

    Raises
    ------
    ConfigError
        Any invalid setting, all reported at once, before training starts.
    TrainingError
        A non-finite loss or non-finite weights; the last complete checkpoint is kept.
    FolderLockedError
        Another process is writing the run folder.
    """
    cfg = validate_fit_config(config, source=source)
    check_writable(cfg.output.dir, what="output.dir")
    if rank_zero_only.rank != 0:  # the other processes of a distributed run: rank 0 holds it
        return _fit(cfg, resume=resume, callbacks=callbacks, source=source)
    run_dir = Path(cfg.output.dir)
    existed = run_dir.exists()
    try:
        with folder_lock(run_dir, command="neurofm fit"):
            return _fit(cfg, resume=resume, callbacks=callbacks, source=source)
    except BaseException:
        # a run refused before anything was written leaves no folder behind (only its lock)
        if not existed and {p.name for p in run_dir.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _fit(
    cfg: FitConfig, *, resume: bool, callbacks: list[pl.Callback] | None, source: str | None
) -> Path:
    """The work of :func:`fit`, run while holding the run folder's lock."""
    if cfg.output.tensorboard and not _tensorboard_available():
        raise ConfigError(
            "output.tensorboard: TensorBoard logs need the tensorboard or tensorboardX package "
            "(pip install 'neurofm[tensorboard]'), or set output.tensorboard: false"
        )
    run_dir = Path(cfg.output.dir)
    check_writable(run_dir, what="output.dir")
    checkpoint = _check_resume(cfg, run_dir, resume)
    store = open_data(cfg.data)
    if isinstance(store, TextSegmentSource):
        prepare_text(store, cfg, run_dir, resuming=checkpoint is not None)
    train_windows = build_dataset(store, cfg.data, cfg.data.train_split)
    early = batch_problems(cfg.trainer, cfg.data, len(train_windows))
    if early:
        raise ConfigError(early, source=source)
    pl.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    tokenizer = _tokenizer(cfg, store, run_dir, resuming=checkpoint is not None)
    datamodule = FitDataModule(
        store=store, data=cfg.data, seed=cfg.trainer.seed, tokenizer=tokenizer
    )
    model = create(MODELS, cfg.model, key="model")
    objective = create(OBJECTIVES, cfg.objective, key="objective")
    spec = model_spec(model)
    check_compatible(cfg, datamodule, tokenizer, spec, objective)
    if spec.data_init and checkpoint is None:
        _init_from_data(model, datamodule, tokenizer)
    module = FitModule(model=model, objective=objective, optim=cfg.optim)
    trainer = _trainer(cfg, run_dir, list(callbacks or []), len(train_windows))
    if rank_zero_only.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_yaml(
            {
                **cfg.to_dict(),
                # the channel names the windows hold (None: a band folder names none)
                "channels": _channel_names(train_windows),
                "neurofm_version": __version__,
            },
            run_dir / CONFIG_FILE,
        )
        if tokenizer is not None and checkpoint is None:
            tokenizer.save(run_dir / TOKENIZER_DIR)
        if checkpoint is not None:
            truncate_metrics(run_dir / METRICS_FILE, checkpoint_step(checkpoint.name))
    log.info(
        "fit: run folder %s%s",
        os.fspath(run_dir),
        f", resuming from {checkpoint.name}" if checkpoint else "",
    )
    with warnings.catch_warnings():
        # Raised inside Lightning's own tree utilities on recent torch; nothing a user can act on.
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`")
        trainer.fit(
            module, datamodule=datamodule, ckpt_path=None if checkpoint is None else str(checkpoint)
        )
    if rank_zero_only.rank == 0:
        write_metrics_json(run_dir)
    return run_dir
