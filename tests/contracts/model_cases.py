"""How the contract tests feed a registered model: built from its spec, not written per model.

There is one input builder per input kind (``INPUTS``), one builder per context field
(``CONTEXT``) and one learning recipe per output kind (``LEARNING``): a model gets the inputs of
its spec's input kind, the context fields its spec lists, and is trained with the objective of
its output kind on a small batch of the shipped real EEG. A new family with a new input, context
or output kind adds one builder here; a new family of an existing kind adds nothing.

Builders read the conventional config fields (``vocab_size``, ``n_chans``, ``n_subjects``,
``n_conditions``, ``n_cond_tokens``, ``d_global``, ``n_classes``), the names every config uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from neurofm.types import Batch, ModelSpec

SAMPLE_EDF = Path(__file__).resolve().parents[2] / "data" / "sample" / "eegbci_S001" / "S001R04.edf"

BATCH = 2
N_CHANS = 3  # channel-code models accept any channel count up to n_chans
N_TIMES = 12  # time steps of code inputs
N_SAMPLES = 32  # samples of signal inputs


@functools.lru_cache(maxsize=4)
def _eeg(n_chans: int, n_times: int, start: int) -> np.ndarray:
    import mne

    raw = mne.io.read_raw_edf(SAMPLE_EDF, preload=False, verbose="error")
    return raw.get_data(picks=list(range(n_chans)), start=start, stop=start + n_times)


def real_eeg(n_chans: int, n_times: int, start: int = 1600) -> np.ndarray:
    """A window (n_chans, n_times) of the shipped EEG sample (S001R04), robustly scaled to ~[-1, 1]."""
    x = _eeg(n_chans, n_times, start)
    x = x - np.median(x, axis=1, keepdims=True)
    return np.clip(x / np.quantile(np.abs(x), 0.99, axis=1, keepdims=True), -1.0, 1.0)


def real_eeg_codes(
    n_levels: int, *, n_chans: int = 4, n_times: int = 64, start: int = 1600
) -> Tensor:
    """Mu-law codes (n_chans, n_times) of a window of the shipped EEG sample (S001R04)."""
    x = real_eeg(n_chans, n_times, start)
    mu = n_levels - 1
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)  # in [-1, 1]
    return torch.from_numpy(np.rint((y + 1.0) / 2.0 * mu).astype(np.int64))


# --- inputs, one builder per input kind: (model, generator) -> x -----------------------------


def _channel_codes(model: nn.Module, gen: torch.Generator) -> Tensor:
    return torch.randint(0, model.config.vocab_size, (BATCH, N_CHANS, N_TIMES), generator=gen)


def _token_sequence(model: nn.Module, gen: torch.Generator) -> Tensor:
    return torch.randint(0, model.config.vocab_size, (BATCH, 16), generator=gen)


def _signal(model: nn.Module, gen: torch.Generator) -> Tensor:
    return torch.randn(BATCH, model.config.n_chans, N_SAMPLES, generator=gen)


def _band_stack(model: nn.Module, gen: torch.Generator) -> Tensor:
    cfg = model.config
    return torch.randn(BATCH, cfg.n_stages, cfg.n_chans, N_SAMPLES, generator=gen)


def real_eeg_counts(n_units: int, n_times: int, start: int = 1600, seed: int = 0) -> Tensor:
    """Poisson counts (n_times, n_units) whose log rates follow the shipped EEG sample."""
    rates = np.exp(real_eeg(n_units, n_times, start)).T
    return torch.from_numpy(np.random.default_rng(seed).poisson(rates).astype(np.float32))


def _binned_counts(model: nn.Module, gen: torch.Generator) -> Tensor:
    rates = torch.full((BATCH, N_SAMPLES, model.config.n_units), 2.0)
    return torch.poisson(rates, generator=gen)


def real_eeg_spikes(n_units: int, window: float, start: int = 1600, seed: int = 0) -> list:
    """Poisson spike times (s) of each unit over ``[0, window)`` whose rates follow the EEG."""
    n_steps = 64
    rates = 40.0 * np.exp(real_eeg(n_units, n_steps, start))  # (U, steps), Hz
    rng, dt = np.random.default_rng(seed), window / n_steps
    trains = []
    for unit_rates in rates:
        counts = rng.poisson(unit_rates * dt)
        steps = np.repeat(np.arange(n_steps), counts)
        trains.append(np.sort((steps + rng.uniform(size=steps.size)) * dt))
    return trains


def _spike_events(model: nn.Module, gen: torch.Generator) -> Tensor:
    from neurofm.data.spike_events import event_windows, pack_events

    cfg = model.config
    window = cfg.n_bins * cfg.bin_size
    seed = int(torch.randint(0, 1000, (1,), generator=gen))
    trains = real_eeg_spikes(cfg.n_units, 2 * window, seed=seed)
    events = event_windows(trains, [0.0, window], window)
    if cfg.n_waveform_features:
        rng = np.random.default_rng(seed)
        events = [(u, t, rng.normal(size=(len(u), cfg.n_waveform_features))) for u, t in events]
    return pack_events(events, n_waveform_features=cfg.n_waveform_features)


def _field_potentials(model: nn.Module, gen: torch.Generator) -> Tensor:
    cfg = model.config
    return torch.randn(BATCH, cfg.n_chans, 8 * cfg.lfp_pool, generator=gen)


def _band_codes(model: nn.Module, gen: torch.Generator) -> Tensor:
    cfg = model.config
    return torch.randint(0, cfg.vocab_size, (BATCH, sum(cfg.stage_tokens)), generator=gen)


def _signal_text(model: nn.Module, gen: torch.Generator) -> Tensor:
    # the signal; its text ids come as the "text" context field
    return torch.randn(BATCH, model.config.n_chans, N_SAMPLES, generator=gen)


INPUTS: dict[str, Callable[[nn.Module, torch.Generator], Tensor]] = {
    "signal_text": _signal_text,
    "channel_codes": _channel_codes,
    "token_sequence": _token_sequence,
    "signal": _signal,
    "band_stack": _band_stack,
    "binned_counts": _binned_counts,
    "band_codes": _band_codes,
    "spike_events": _spike_events,
    "field_potentials": _field_potentials,
}
# Where time runs in each input kind and in each output kind.
INPUT_TIME_AXIS = {
    "signal_text": -1,
    "channel_codes": -1,
    "token_sequence": -1,
    "signal": -1,
    "band_stack": -1,
    "binned_counts": 1,
    "band_codes": -1,
    "spike_events": 1,
    "field_potentials": -1,
}
OUTPUT_TIME_AXIS = {"logits": -2, "prediction": -1, "noise": -1}


def prediction_shape(model: nn.Module, spec: ModelSpec, x: Tensor) -> tuple[int, ...]:
    """The shape of a ``prediction`` / ``noise`` output for input ``x``: the input's, except
    for spike events (per-bin rates) and field potentials (per pooled step band powers)."""
    cfg = model.config
    if spec.inputs == "spike_events":
        return (x.shape[0], cfg.n_bins, cfg.n_units)
    if spec.inputs == "field_potentials":
        return (x.shape[0], x.shape[-1] // cfg.lfp_pool, 5 * cfg.n_chans)
    return tuple(x.shape)


# Denoisers (spec sampling "diffusion" / "flow") are called as model(t, x_t): the timestep of
# each sampling kind the contract tests pass.
TIMESTEPS: dict[str, Callable[[int], Tensor]] = {
    "flow": lambda b: torch.full((b,), 0.5),
    "diffusion": lambda b: torch.full((b,), 3, dtype=torch.long),
}


def call_model(model: nn.Module, spec: ModelSpec, x: Tensor, context: dict):
    """``model(x, **context)``, or ``model(t, x, **context)`` for a denoiser."""
    if spec.sampling in TIMESTEPS:
        return model(TIMESTEPS[spec.sampling](x.shape[0]), x, **context)
    return model(x, **context)


# --- context, one builder per field: (model, x, generator) -> tensor --------------------------


def _subject(model: nn.Module, x: Tensor, gen: torch.Generator) -> Tensor:
    return torch.randint(0, model.config.n_subjects, (x.shape[0],), generator=gen)


def _condition(model: nn.Module, x: Tensor, gen: torch.Generator) -> Tensor:
    cfg = model.config
    shape = (x.shape[0], cfg.n_cond_tokens, x.shape[-1])
    return torch.randint(0, cfg.n_conditions, shape, generator=gen)


def _channel_ids(model: nn.Module, x: Tensor, gen: torch.Generator) -> Tensor:
    ids = torch.arange(model.config.n_chans - x.shape[1], model.config.n_chans)  # not 0..C-1
    return ids.expand(x.shape[0], -1)


def _global_embedding(model: nn.Module, x: Tensor, gen: torch.Generator) -> Tensor:
    return torch.randn(x.shape[0], model.config.d_global, generator=gen)


def _positions(model: nn.Module, x: Tensor, gen: torch.Generator) -> Tensor:
    return 0.1 * torch.randn(x.shape[0], x.shape[1], 3, generator=gen)


def _text(model: nn.Module, x: Tensor, gen: torch.Generator) -> Tensor:
    return torch.randint(6, model.config.vocab_size, (x.shape[0], 7), generator=gen)


CONTEXT: dict[str, Callable[[nn.Module, Tensor, torch.Generator], Tensor]] = {
    "text": _text,
    "subject": _subject,
    "condition": _condition,
    "channel_ids": _channel_ids,
    "global_embedding": _global_embedding,
    "positions": _positions,
}


def build_inputs(model: nn.Module, spec: ModelSpec, seed: int = 1) -> tuple[Tensor, dict]:
    """A forward input of the model's input kind and every context field its spec lists."""
    gen = torch.Generator().manual_seed(seed)
    x = INPUTS[spec.inputs](model, gen)
    return x, {name: CONTEXT[name](model, x, gen) for name in spec.context}


# --- learning, one recipe per output kind: model -> (objective spec, Batch) ------------------


def _next_token_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    vocab = model.config.vocab_size
    objective = {"name": "discrete_flow" if spec.sampling == "flow" else "next_token"}
    if spec.inputs == "token_sequence":  # each channel one sequence
        codes = real_eeg_codes(vocab, n_chans=2, n_times=96)
    else:
        codes = torch.stack([real_eeg_codes(vocab, start=s) for s in (1600, 3200)])
    gen = torch.Generator().manual_seed(0)
    return objective, Batch(x=codes, context=_batch_context(model, spec, codes, gen))


def _forecast_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    n_chans = model.config.n_chans
    x = torch.from_numpy(np.stack([real_eeg(n_chans, 64, s) for s in (1600, 3200)])).float()
    loss = "gaussian_nll" if spec.variance else "mse"
    gen = torch.Generator().manual_seed(0)
    return {"name": "forecast", "loss": loss}, Batch(
        x=x, context=_batch_context(model, spec, x, gen)
    )


def _denoising_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    n_chans = model.config.n_chans
    x = torch.from_numpy(np.stack([real_eeg(n_chans, 64, s) for s in (1600, 3200)])).float()
    return {"name": "diffusion", "preset": "tiny"}, Batch(x=x)


def _classification_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    cfg = model.config
    starts = (800, 1600, 2400, 3200, 4000, 4800)
    if spec.inputs == "channel_codes":  # mu-law codes of the same windows
        x = torch.stack(
            [real_eeg_codes(cfg.vocab_size, n_chans=cfg.n_chans, start=s) for s in starts]
        )
    else:
        x = torch.from_numpy(np.stack([real_eeg(cfg.n_chans, 64, s) for s in starts])).float()
    label = torch.arange(len(starts)) % cfg.n_classes  # arbitrary labels: memorised
    gen = torch.Generator().manual_seed(0)
    return {"name": "classification"}, Batch(
        x=x, label=label, context=_batch_context(model, spec, x, gen)
    )


def _next_band_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    from neurofm.tokenizers.bands import cumulative_frequency_levels

    cfg = model.config
    # bands of 4 s of real EEG at 160 Hz (stage edges spread up to 40 Hz), cut to 64 samples
    edges = np.linspace(1.0, 40.0, cfg.n_stages + 1)
    bands = list(zip(edges[:-1], edges[1:]))
    levels = [
        cumulative_frequency_levels(real_eeg(cfg.n_chans, 640, s), 160.0, bands, 101)[..., :64]
        for s in (1600, 3200)
    ]
    x = torch.from_numpy(np.stack(levels)).float()
    gen = torch.Generator().manual_seed(0)
    # stage 0 (zeros -> lowest band) is the same input for both windows: not memorisable
    section = {"name": "next_band", "include_first_stage": False}
    return section, Batch(x=x, context=_batch_context(model, spec, x, gen))


def _band_codes_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    import pytest

    from neurofm.registry import TOKENIZERS, create

    pytest.importorskip("vector_quantize_pytorch", reason="band_rvq codes need the vq extra")
    cfg = model.config
    # a tiny band_rvq tokenizer (the model's stage grid) fitted on windows of real EEG
    n_times = 32
    section = {"name": "band_rvq", "preset": "tiny", "n_times": n_times}
    section["stage_tokens"] = list(cfg.stage_tokens)
    section["codebook_size"] = cfg.vocab_size
    tokenizer = create(TOKENIZERS, section)
    tok = tokenizer.config
    signals = np.stack([real_eeg(tok.n_chans, n_times, 800 + 40 * i) for i in range(24)])
    tokenizer.fit(signals, fitted_on="contract:train")
    codes = torch.as_tensor(tokenizer.encode(signals[[4, 20]]).codes)
    label = torch.tensor([0, min(1, max(cfg.n_classes - 1, 0))])
    section = {"name": "band_tokens", "use_labels": cfg.n_classes > 0}
    gen = torch.Generator().manual_seed(0)
    return section, Batch(x=codes, label=label, context=_batch_context(model, spec, codes, gen))


def _batch_context(model: nn.Module, spec: ModelSpec, x: Tensor, gen: torch.Generator) -> dict:
    return {name: CONTEXT[name](model, x, gen) for name in spec.context}


def _text_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    cfg = model.config
    n_times = 8 * cfg.patch
    x = torch.from_numpy(np.stack([real_eeg(cfg.n_chans, n_times, s) for s in (1600, 3200)]))
    text = torch.tensor([[7, 8, 9, 10, 3, 0], [11, 12, 13, 14, 15, 3]])  # 3: </s>, 0: padding
    section = {"name": "meg_text", "meg_dropout": 0.0}
    return section, Batch(x=x.float(), target=text, meta={"text_mask": text != 0})


LEARNING: dict[str, Callable[[nn.Module, ModelSpec], tuple[dict, Batch]]] = {
    "text": _text_batch,
    "logits": _next_token_batch,
    "prediction": _forecast_batch,
    "noise": _denoising_batch,
    "class_logits": _classification_batch,
}


def _binned_counts_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    n_units = model.config.n_units
    x = torch.stack([real_eeg_counts(n_units, 32, s) for s in (1600, 3200)])
    gen = torch.Generator().manual_seed(0)
    # no random unit masking: the same batch every step, so the loss can only fall by learning
    section = {"name": "multitask", "mask_fraction": 0.0}
    return section, Batch(x=x, context=_batch_context(model, spec, x, gen))


def _spike_events_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    from neurofm.data.spike_events import event_windows, pack_events

    cfg = model.config
    window = cfg.n_bins * cfg.bin_size
    trains = real_eeg_spikes(cfg.n_units, 2 * window)
    x = pack_events(event_windows(trains, [0.0, window], window))
    # no random unit masking: the same batch every step (the rates are fitted to the counts)
    return {"name": "multitask", "mask_fraction": 0.0}, Batch(x=x)


def _field_potentials_batch(model: nn.Module, spec: ModelSpec) -> tuple[dict, Batch]:
    cfg = model.config
    n_times = 16 * cfg.lfp_pool
    x = torch.from_numpy(np.stack([real_eeg(cfg.n_chans, n_times, s) for s in (1600, 3200)]))
    return {"name": "multitask"}, Batch(x=x.float())


LEARNING_BY_INPUT: dict[str, Callable[[nn.Module, ModelSpec], tuple[dict, Batch]]] = {
    "spike_events": _spike_events_batch,
    "field_potentials": _field_potentials_batch,
    "band_stack": _next_band_batch,
    "binned_counts": _binned_counts_batch,
    "band_codes": _band_codes_batch,
}
"""Input kinds trained by their own objective whatever their output kind."""
