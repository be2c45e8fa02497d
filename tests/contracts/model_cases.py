"""How the contract tests feed each registered model: one ``ModelCase`` per registry name.

Adding a model to ``neurofm.models`` means adding a row to ``CASES`` (the completeness test fails
otherwise). A row says how to build inputs for a built ``tiny`` model, which output field to
check, whether the model is causal in time, and optionally a float input path (for the
future-gradient test) and a small real-data batch with the objective it should overfit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from neurofm.types import Batch

SAMPLE_EDF = Path(__file__).resolve().parents[2] / "data" / "sample" / "eegbci_S001" / "S001R04.edf"

Inputs = tuple[Tensor, dict]


@dataclass(frozen=True)
class ModelCase:
    """Test recipe for one registered model.

    Attributes
    ----------
    inputs : callable (model, generator) -> (x, kwargs)
        A forward input for the built model.
    output : str
        The ``ModelOutput`` field to check (``"logits"`` or ``"prediction"``).
    causal : bool
        The output at time t depends only on inputs at times <= t.
    output_time_axis : int
        Time axis of the checked output (-2 for logits (..., T, V), -1 for (B, C, T)).
    float_inputs : callable (model, generator) -> (x, kwargs, time_axis), optional
        A float input path (signal or embeddings) for the future-gradient-is-zero test.
    overfit : callable (model) -> (objective name, Batch), optional
        A small batch of real data the model must overfit with that objective.
    """

    inputs: Callable[[nn.Module, torch.Generator], Inputs]
    output: str = "logits"
    causal: bool = False
    output_time_axis: int = -2
    float_inputs: Callable[[nn.Module, torch.Generator], tuple[Tensor, dict, int]] | None = None
    overfit: Callable[[nn.Module], tuple[str, Batch]] | None = None


@functools.lru_cache(maxsize=4)
def _eeg(n_chans: int, n_times: int, start: int) -> np.ndarray:
    import mne

    raw = mne.io.read_raw_edf(SAMPLE_EDF, preload=False, verbose="error")
    return raw.get_data(picks=list(range(n_chans)), start=start, stop=start + n_times)


def real_eeg_codes(
    n_levels: int, *, n_chans: int = 4, n_times: int = 64, start: int = 1600
) -> Tensor:
    """Mu-law codes (n_chans, n_times) of a window of the shipped EEG sample (S001R04)."""
    x = _eeg(n_chans, n_times, start)
    x = x - np.median(x, axis=1, keepdims=True)
    x = np.clip(x / np.quantile(np.abs(x), 0.99, axis=1, keepdims=True), -1.0, 1.0)
    mu = n_levels - 1
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)  # in [-1, 1]
    codes = np.rint((y + 1.0) / 2.0 * mu).astype(np.int64)
    return torch.from_numpy(codes)


def _channel_codes(model: nn.Module, gen: torch.Generator) -> Inputs:
    cfg = model.config
    x = torch.randint(0, cfg.vocab_size, (2, 3, 12), generator=gen)
    kwargs = {
        "subject": torch.tensor([0, cfg.n_subjects - 1]),
        "condition": torch.randint(0, cfg.n_conditions, (2, 12), generator=gen),
    }
    return x, kwargs


def _channel_embeddings(model: nn.Module, gen: torch.Generator) -> tuple[Tensor, dict, int]:
    x = torch.randn(2, 3, 12, model.config.d_model, generator=gen)
    return x, {"subject": torch.tensor([0, 1])}, -2


def _cond_codes(model: nn.Module, gen: torch.Generator) -> Inputs:
    x, kwargs = _channel_codes(model, gen)
    cfg = model.config
    kwargs["condition"] = torch.randint(
        0, cfg.n_conditions, (2, cfg.n_cond_tokens, 12), generator=gen
    )
    kwargs["global_embedding"] = torch.randn(2, cfg.d_global, generator=gen)
    return x, kwargs


def _channel_overfit(model: nn.Module) -> tuple[str, Batch]:
    codes = torch.stack([real_eeg_codes(model.config.vocab_size, start=s) for s in (1600, 3200)])
    return "next_token", Batch(x=codes, context={"subject": torch.tensor([0, 1])})


def _flat_codes(model: nn.Module, gen: torch.Generator) -> Inputs:
    return torch.randint(0, model.config.vocab_size, (2, 16), generator=gen), {}


def _flat_overfit(model: nn.Module) -> tuple[str, Batch]:
    codes = real_eeg_codes(
        model.config.vocab_size, n_chans=2, n_times=96
    )  # one sequence per channel
    return "next_token", Batch(x=codes)


def _signal(model: nn.Module, gen: torch.Generator) -> Inputs:
    return torch.randn(2, model.config.n_chans, 32, generator=gen), {}


def _signal_float(model: nn.Module, gen: torch.Generator) -> tuple[Tensor, dict, int]:
    return torch.randn(2, model.config.n_chans, 32, generator=gen), {}, -1


CASES: dict[str, ModelCase] = {
    "gpt_causal": ModelCase(_flat_codes, causal=True, overfit=_flat_overfit),
    "gpt2meg": ModelCase(_channel_codes, causal=True, overfit=_channel_overfit),
    "gpt2meg_trf": ModelCase(
        _channel_codes, causal=True, float_inputs=_channel_embeddings, overfit=_channel_overfit
    ),
    "gpt2meg_cond": ModelCase(
        _cond_codes, causal=True, float_inputs=_channel_embeddings, overfit=_channel_overfit
    ),
    "gpt2meg_mix": ModelCase(
        _channel_codes, causal=True, float_inputs=_channel_embeddings, overfit=_channel_overfit
    ),
    "gpt2meg_moe": ModelCase(
        _channel_codes, causal=True, float_inputs=_channel_embeddings, overfit=_channel_overfit
    ),
    "stgpt2meg": ModelCase(
        _channel_codes, causal=True, float_inputs=_channel_embeddings, overfit=_channel_overfit
    ),
    "classifier_continuous": ModelCase(_signal),
    "conv_forecaster": ModelCase(
        _signal, output="prediction", causal=True, output_time_axis=-1, float_inputs=_signal_float
    ),
}
