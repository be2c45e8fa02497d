"""Read back a run folder written by ``neurofm fit``: :func:`load_run`.

The folder's layout is described and named in :mod:`neurofm.training.run_folder`. Nothing here
imports Lightning: evaluation, generation and notebooks read runs without the training stack.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from neurofm.config import build_config, load_yaml
from neurofm.data.channels import match_channels
from neurofm.data.store import PreparedStore
from neurofm.data.windows import WindowDataset
from neurofm.errors import ChannelMismatchError, CheckpointError
from neurofm.fileio import resolve_inside
from neurofm.registry import MODELS, create
from neurofm.tokenizers.band_data import BandFolder
from neurofm.tokenizers.base import Tokenizer, load_tokenizer
from neurofm.tokenizers.text_vocab import load_text_tokenizer
from neurofm.training.checkpoint import (
    load_weights,
    newest_verified_checkpoint,
    verify_checkpoint,
)
from neurofm.training.config import DataConfig
from neurofm.training.data import build_dataset, check_tokenizer_rate, open_data
from neurofm.training.pretrained import from_pretrained
from neurofm.training.run_folder import (
    BEST_DIR,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    MODEL_DIR,
    TOKENIZER_DIR,
    WEIGHTS_FILE,
    checkpoint_step,
)
from neurofm.training.text_data import TEXT_TOKENIZER_DIR, TextSegmentSource


@dataclass
class Run:
    """A trained run, read back by :func:`load_run`.

    Attributes
    ----------
    run_dir : Path
        The run folder.
    model : nn.Module
        The trained model, in eval mode, on the CPU.
    tokenizer : Tokenizer or None
        The run's fitted tokenizer.
    config : dict
        The resolved config the run was trained with.
    store : PreparedStore or BandFolder
        The prepared store (or ``.npz`` band folder) the run was trained on.
    checkpoint : str
        Where the weights came from: ``"final"`` (``model/``) or the checkpoint folder actually
        read (``"step-<N>"``; ``"last"`` is resolved to the folder it names or fell back to).
    warnings : list of str
        What went wrong on the way (for example an unreadable ``last`` checkpoint passed over).
    """

    run_dir: Path
    model: nn.Module
    tokenizer: Tokenizer | None
    config: dict[str, Any]
    store: PreparedStore | BandFolder
    checkpoint: str = "final"
    warnings: list[str] = field(default_factory=list)

    @property
    def data_config(self) -> DataConfig:
        """The run's ``data`` section as a DataConfig.

        When the run recorded its training channels, they are the channels read (by name, in
        training order), so a store whose channels are reordered gives the same windows."""
        section = {k: v for k, v in self.config["data"].items()}
        if self.config.get("channels"):
            section["channels"] = list(self.config["channels"])
        return build_config(
            DataConfig, section, prefix="data", source=str(self.run_dir / CONFIG_FILE)
        )

    def dataset(self, split: str) -> WindowDataset | Any:
        """The windows of ``split`` built exactly as training built them (float ``x``)."""
        return build_dataset(self.store, self.data_config, split)


def check_store_channels(config: dict[str, Any], store: PreparedStore, run_dir: Path) -> None:
    """Match every recording of ``store`` against the channels the run was trained on (by name):
    reordered channels are read in training order; missing or renamed ones raise a
    ChannelMismatchError listing them (extra ones follow ``data.channel_policy``)."""
    trained = config.get("channels")
    if not trained:  # runs written before the training channels were recorded
        return
    policy = config.get("data", {}).get("channel_policy", "drop_extra")
    for rec in store.recordings:
        try:
            match_channels(trained, rec.sensors.names, policy=policy)
        except ChannelMismatchError as err:
            raise ChannelMismatchError(
                f"store {str(store.root)!r}, recording {rec.id!r} does not give the channels "
                f"run {str(run_dir)!r} was trained on: {err}"
            ) from err


def load_run(
    run_dir: str | Path, *, checkpoint: str | None = None, store: str | Path | None = None
) -> Run:
    """Read a run folder written by ``neurofm fit``.

    Parameters
    ----------
    run_dir : path
        The run folder.
    checkpoint : str, optional
        ``None`` for the final model (``model/``), ``"best"`` for the model of the lowest
        validation loss (``best/``), ``"last"`` for the newest complete
        checkpoint, or a checkpoint folder name such as ``"step-200"``.
    store : path, optional
        The prepared store, when it moved since training (default: ``data.store`` of the config).

    Returns
    -------
    Run
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise CheckpointError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    config = load_yaml(run_dir / CONFIG_FILE)
    notes: list[str] = []
    used = "final"
    if checkpoint is None:
        model = from_pretrained(run_dir / MODEL_DIR)
    elif checkpoint == "best":
        if not (run_dir / BEST_DIR).is_dir():
            raise CheckpointError(f"{run_dir}: no best model (it needs a validation split)")
        model = from_pretrained(run_dir / BEST_DIR)
    else:
        if checkpoint == "last":
            folder, skipped = newest_verified_checkpoint(run_dir / CHECKPOINTS_DIR)
            if folder is None:
                detail = "; ".join(skipped) if skipped else "none was written"
                raise CheckpointError(f"{run_dir}: no readable checkpoint for 'last' ({detail})")
            if skipped:
                notes.append(
                    f"checkpoint 'last' is unreadable, used {folder.name} instead: "
                    + "; ".join(skipped)
                )
                warnings.warn(notes[-1], stacklevel=2)
        else:
            folder = resolve_inside(
                run_dir / CHECKPOINTS_DIR, checkpoint, source=run_dir, field="checkpoint"
            )
            if checkpoint_step(checkpoint) is None:
                raise CheckpointError(
                    f"{run_dir}: checkpoint {checkpoint!r} is not 'last' or a 'step-<N>' name"
                )
            if not folder.is_dir():
                raise CheckpointError(f"{run_dir}: no checkpoint {checkpoint!r}")
            verify_checkpoint(folder)
        used = folder.name
        model = create(MODELS, config["model"], key="model")
        try:
            model.load_state_dict(load_weights(folder / WEIGHTS_FILE), strict=True)
        except RuntimeError as err:
            raise CheckpointError(
                f"{folder / WEIGHTS_FILE}: weights do not fit the model: {err}"
            ) from err
    model.eval()
    tokenizer = (
        load_tokenizer(run_dir / TOKENIZER_DIR) if config.get("tokenizer") is not None else None
    )
    data = build_config(
        DataConfig,
        {**config["data"], **({} if store is None else {"store": str(store)})},
        prefix="data",
        source=str(run_dir / CONFIG_FILE),
    )
    prepared = open_data(data)
    if isinstance(prepared, TextSegmentSource):
        prepared.text_tokenizer = load_text_tokenizer(run_dir / TEXT_TOKENIZER_DIR)
    if isinstance(prepared, PreparedStore):
        check_store_channels(config, prepared, run_dir)
    if tokenizer is not None:
        check_tokenizer_rate(tokenizer, prepared)
    return Run(
        run_dir=run_dir,
        model=model,
        tokenizer=tokenizer,
        config=config,
        store=prepared,
        checkpoint=used,
        warnings=notes,
    )
