"""Checks that the data, the tokenizer, the model and the objective of a fit fit together, run
after the datasets are built and before training: the objective trains the model's kind (its
spec), channel count and vocabulary size agree, windows fit ``max_seq_len``, band models get band
stacks or band-stage codes of their grid, and spiking / field-potential models get their data
layout (:mod:`neurofm.training.neural_checks`). Every problem is reported at once
(:class:`~neurofm.errors.ConfigError`)."""

from __future__ import annotations

from neurofm.data.store import PreparedStore
from neurofm.errors import ConfigError
from neurofm.objectives.base import Objective
from neurofm.tokenizers.base import Tokenizer
from neurofm.training.config import FitConfig
from neurofm.training.data import data_sfreq
from neurofm.training.datamodule import FitDataModule
from neurofm.training.neural_checks import layout_problems
from neurofm.types import ModelSpec


def check_compatible(
    cfg: FitConfig,
    datamodule: FitDataModule,
    tokenizer: Tokenizer | None,
    spec: ModelSpec,
    objective: Objective,
) -> None:
    """Data, tokenizer, model and objective fit together: the objective trains the model's
    kind (its spec), channel count and vocabulary size agree, windows fit ``max_seq_len``."""
    problems: list[str] = []
    n_times = int(datamodule.train_dataset[0]["x"].shape[-1])
    if spec.max_seq_len is not None and spec.inputs in ("channel_codes", "signal"):
        if n_times > spec.max_seq_len:
            problems.append(
                f"data: windows of {n_times} samples exceed the model's "
                f"max_seq_len={spec.max_seq_len} (model.max_seq_len)"
            )
    elif (
        spec.max_seq_len is not None
        and tokenizer is not None
        and spec.inputs in ("token_sequence",)
    ):
        first = datamodule.train_dataset[0]["x"][None]
        length = int(tokenizer.encode(first).codes.shape[-1])
        if length > spec.max_seq_len:
            problems.append(
                f"data: windows of {n_times} samples give {length} tokens, more than the "
                f"model's max_seq_len={spec.max_seq_len} (model.max_seq_len)"
            )
    first = datamodule.train_dataset[0]["x"]
    n_chans = int(first.shape[-2])
    problems += layout_problems(cfg, spec, datamodule.train_dataset, _rate(datamodule, spec))
    if spec.inputs == "band_stack":
        problems += _band_problems(cfg, tuple(first.shape))
    if spec.inputs == "band_codes" and tokenizer is not None:
        problems += _band_code_problems(cfg, tokenizer, tuple(first.shape))
    model_chans = cfg.model.get("n_chans")  # counts windows are (T, units): no channel axis
    if model_chans is not None and model_chans != n_chans and cfg.data.layout == "channels":
        problems.append(
            f"model.n_chans: {model_chans}, but the windows of {cfg.data.store!r} "
            f"have {n_chans} channels"
        )
    model_vocab = cfg.model.get("vocab_size")
    if (
        tokenizer is not None
        and model_vocab is not None
        and tokenizer.vocab_size is not None
        and model_vocab != tokenizer.vocab_size
    ):
        problems.append(
            f"model.vocab_size: {model_vocab}, but tokenizer "
            f"{tokenizer.registry_name!r} has {tokenizer.vocab_size} codes"
        )
    if problems:
        raise ConfigError(problems)


def _rate(datamodule: FitDataModule, spec: ModelSpec) -> float | None:
    """The train windows' sampling rate for a field-potential model (None for the others)."""
    if spec.inputs != "field_potentials" or not isinstance(datamodule.store, PreparedStore):
        return None
    return data_sfreq(datamodule.store, datamodule.train_dataset)


def _band_problems(cfg: FitConfig, shape: tuple[int, ...]) -> list[str]:
    """A model over band stacks (L, C, T) gets band stacks of its stage count and length."""
    if len(shape) != 3:
        return [
            f"data.bands: model {cfg.model['name']!r} takes cumulative bands (L, C, T); set "
            "data.bands (e.g. [[0.5, 4], [4, 8], [8, 13], [13, 30], [30, 50]]) or "
            "data.format: band_npz"
        ]
    problems = []
    n_stages, n_times = cfg.model.get("n_stages"), cfg.model.get("n_times")
    if n_stages is not None and n_stages != shape[0]:
        problems.append(f"model.n_stages: {n_stages}, but the data has {shape[0]} bands")
    if n_times is not None and n_times < shape[-1]:
        problems.append(f"model.n_times: {n_times}, but the windows have {shape[-1]} samples")
    return problems


def _band_code_problems(cfg: FitConfig, tokenizer: Tokenizer, shape: tuple[int, ...]) -> list[str]:
    """A model over band-stage codes gets the stage grid of a band tokenizer."""
    grid = getattr(tokenizer.config, "stage_tokens", None)
    if grid is None:
        return [
            f"tokenizer: model {cfg.model['name']!r} takes band-stage codes; use name: band_rvq"
        ]
    problems = []
    if len(shape) == 3 and shape[0] != len(grid):
        problems.append(
            f"tokenizer.stage_tokens: {len(grid)} stages, the data has {shape[0]} bands"
        )
    model_grid = cfg.model.get("stage_tokens")
    if model_grid is not None and list(model_grid) != list(grid):
        problems.append(
            f"model.stage_tokens: {list(model_grid)}, but the tokenizer's are {list(grid)}"
        )
    return problems
