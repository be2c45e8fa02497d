"""Shared dataclasses passed between layers: SensorInfo, Batch, ModelSpec, ModelOutput,
TokenizerOutput.

Shape conventions (fixed across neurofm): ``B`` batch, ``C`` channels, ``T`` time samples,
``V`` vocabulary, ``L`` quantizer levels, ``D`` feature size, ``H x W`` a sensor grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

CHANNEL_TYPES = (
    "mag",
    "grad",
    "eeg",
    "ecog",
    "seeg",
    "dbs",
    "lfp",
    "spikes",
    "eog",
    "ecg",
    "emg",
    "stim",
    "resp",
    "misc",
)
"""The channel types a Recording may hold."""

DEFAULT_UNITS = {
    "mag": "T",
    "grad": "T/m",
    "eeg": "V",
    "ecog": "V",
    "seeg": "V",
    "dbs": "V",
    "lfp": "V",
    "spikes": "count",
    "eog": "V",
    "ecg": "V",
    "emg": "V",
    "stim": "a.u.",
    "resp": "a.u.",
    "misc": "a.u.",
}


@dataclass
class SensorInfo:
    """Per-channel description of a recording.

    Attributes
    ----------
    names : list of str
        Channel names, unique.
    types : list of str
        Channel types, each one of ``CHANNEL_TYPES``.
    units : list of str
        Physical unit of each channel (T, T/m, V, count, ...).
    positions : ndarray, shape (C, 3) or None
        Sensor positions in metres (head frame when known), NaN rows where unknown.
    orientations : ndarray, shape (C, 3) or None
        Sensor normal (MEG coil orientation), NaN rows where unknown.
    bads : list of str
        Names of channels marked bad.
    """

    names: list[str]
    types: list[str]
    units: list[str] = field(default_factory=list)
    positions: np.ndarray | None = None
    orientations: np.ndarray | None = None
    bads: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        self.types = [str(t) for t in self.types]
        n = len(self.names)
        if len(self.types) != n:
            raise ValueError(f"SensorInfo: {n} names but {len(self.types)} types")
        if len(set(self.names)) != n:
            dup = sorted({x for x in self.names if self.names.count(x) > 1})
            raise ValueError(f"SensorInfo: duplicate channel names {dup}")
        bad_types = sorted(set(self.types) - set(CHANNEL_TYPES))
        if bad_types:
            raise ValueError(
                f"SensorInfo: unknown channel types {bad_types}; allowed: {CHANNEL_TYPES}"
            )
        if not self.units:
            self.units = [DEFAULT_UNITS[t] for t in self.types]
        if len(self.units) != n:
            raise ValueError(f"SensorInfo: {n} names but {len(self.units)} units")
        for attr in ("positions", "orientations"):
            arr = getattr(self, attr)
            if arr is not None:
                arr = np.asarray(arr, dtype=np.float64)
                if arr.shape != (n, 3):
                    raise ValueError(f"SensorInfo.{attr}: expected shape ({n}, 3), got {arr.shape}")
                setattr(self, attr, arr)
        unknown_bads = sorted(set(self.bads) - set(self.names))
        if unknown_bads:
            raise ValueError(f"SensorInfo.bads: names not among the channels: {unknown_bads}")
        self.bads = [str(b) for b in self.bads]

    @property
    def n_chans(self) -> int:
        return len(self.names)

    def counts_by_type(self) -> dict[str, int]:
        """Number of channels of each type, in first-seen order."""
        out: dict[str, int] = {}
        for t in self.types:
            out[t] = out.get(t, 0) + 1
        return out

    def pick(self, indices: list[int] | np.ndarray) -> SensorInfo:
        """A SensorInfo restricted to ``indices`` (in that order)."""
        idx = [int(i) for i in indices]
        names = [self.names[i] for i in idx]
        return SensorInfo(
            names=names,
            types=[self.types[i] for i in idx],
            units=[self.units[i] for i in idx],
            positions=None if self.positions is None else self.positions[idx],
            orientations=None if self.orientations is None else self.orientations[idx],
            bads=[b for b in self.bads if b in names],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (positions as nested lists with None for NaN)."""

        def arr(a: np.ndarray | None) -> list | None:
            if a is None:
                return None
            return [[None if not np.isfinite(v) else float(v) for v in row] for row in a]

        return {
            "names": self.names,
            "types": self.types,
            "units": self.units,
            "positions": arr(self.positions),
            "orientations": arr(self.orientations),
            "bads": self.bads,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SensorInfo:
        def arr(a: list | None) -> np.ndarray | None:
            if a is None:
                return None
            return np.array(
                [[np.nan if v is None else v for v in row] for row in a], dtype=np.float64
            )

        return cls(
            names=d["names"],
            types=d["types"],
            units=d.get("units", []),
            positions=arr(d.get("positions")),
            orientations=arr(d.get("orientations")),
            bads=d.get("bads", []),
        )


CONTEXT_FIELDS: dict[str, str] = {
    "subject": "window",  # (B,) int64 subject id
    "session": "window",  # (B,) int64 session id
    "channel_ids": "channel",  # (B, C) int64 id of each channel in the dataset's vocabulary
    "positions": "channel",  # (B, C, 3) float sensor positions (m)
    "condition": "time",  # (B, T) or (B, n_streams, T) int64 per-time event label, 0: none
    "global_embedding": "window",  # (B, d_global) float vector describing the window or trial
    "text": "window",  # (B, L) int64 text token ids of the window (signal_text models)
}
"""The named context tensors a batch may carry, and what each is aligned with.

``"window"``: one value per window; ``"channel"``: one per channel (second axis); ``"time"``:
one per time step (last axis), so objectives and samplers cut it like the signal. Adding a
context kind means a row here, the dataset that produces it and the model that reads it (and
declares it in its :class:`ModelSpec`); nothing in between changes.
"""


@dataclass
class Batch:
    """A batch of windows as served by ``WindowDataset`` and collated by ``collate``.

    Attributes
    ----------
    x : Tensor, shape (B, C, T)
        Signal windows (float32), or codes (int64) once tokenized.
    target : Tensor or None
        Forecasting target, e.g. (B, C, T) shifted signal, or codes.
    label : Tensor, shape (B,) or None
        Per-window class label (int64), -1 where none.
    context : dict of str to Tensor
        Named context tensors, keys from :data:`CONTEXT_FIELDS` (subject, session, channel ids,
        sensor positions, per-time condition, global vector). A model receives those its
        :class:`ModelSpec` lists, as keyword arguments.
    meta : dict
        Anything else (recording index, window start sample, ...).
    """

    x: Any
    target: Any = None
    label: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.context) - set(CONTEXT_FIELDS))
        if unknown:
            raise ValueError(
                f"Batch.context: unknown fields {unknown}; allowed: {', '.join(CONTEXT_FIELDS)}"
            )

    def to(self, device: Any) -> Batch:
        """Move every tensor (context included) to ``device``."""
        import torch

        def move(v: Any) -> Any:
            return v.to(device) if isinstance(v, torch.Tensor) else v

        return replace(
            self,
            x=move(self.x),
            target=move(self.target),
            label=move(self.label),
            context={k: move(v) for k, v in self.context.items()},
        )

    def __len__(self) -> int:
        return int(self.x.shape[0])


INPUT_KINDS = {
    "channel_codes": "integer codes (B, C, T), one per channel-sample",
    "token_sequence": "integer token ids (B, T)",
    "signal": "float signal (B, C, T)",
    "sensor_grid": "float signal on a sensor grid (B, T, H, W) or codes (B, Q, T, H, W)",
    "band_stack": "cumulative frequency bands (B, n_bands, C, T)",
    "band_codes": "multi-scale codes of frequency-band stages (B, N), stage after stage",
    "spike_events": "spike events (B, N, 2 + F): unit id (-1: padding), time (s), F waveform "
    "features per spike (neurofm.data.spike_events)",
    "binned_counts": "binned spike counts (B, T, n_units)",
    "field_potentials": "float field potentials (B, C, T), read out on a grid pooled in time",
    "signal_text": "float signal (B, C, T) with text token ids (B, L)",
}
OUTPUT_KINDS = {
    "logits": "ModelOutput.logits over a vocabulary, (..., T, V) aligned with the input",
    "prediction": "ModelOutput.prediction, continuous, shaped like the input; optional "
    "extras['log_variance'] for a Gaussian",
    "noise": "ModelOutput.prediction of the noise (or velocity) of a diffusion / flow step, "
    "shaped like the input; the model is called as model(t, x_t)",
    "latents": "ModelOutput.extras['latents'] (B, T', D)",
    "class_logits": "ModelOutput.logits (B, n_classes)",
    "text": "ModelOutput.logits over a text vocabulary (B, L, V)",
}
SAMPLING_KINDS = {
    "autoregressive": "one step at a time, each conditioned on the steps before",
    "diffusion": "iterative denoising from noise; the model is called as model(t, x_t)",
    "flow": "integrating a learned flow from noise; the model is called as model(t, x_t)",
    "next_band": "coarse-to-fine over frequency bands",
    "band_tokens": "coarse-to-fine over frequency bands, all tokens of one stage at a time",
    "none": "the model does not generate",
}


@dataclass(frozen=True)
class ModelSpec:
    """What a model is, declared once at registration (``MODELS.register(..., spec=...)``).

    Objectives, samplers, evaluation, ``fit``'s compatibility checks and the contract tests read
    the spec; nothing inspects a model's signature or probes its attributes.

    Attributes
    ----------
    inputs : str
        Input kind, a key of :data:`INPUT_KINDS`.
    outputs : str
        Output kind, a key of :data:`OUTPUT_KINDS`.
    causal : bool
        The output at time t depends on inputs at times <= t only.
    cache : bool
        ``forward(..., past=, use_cache=)`` decodes incrementally (``ModelOutput.past``).
    context : tuple of str
        The context fields (keys of :data:`CONTEXT_FIELDS`) the model takes as keyword
        arguments of ``forward``.
    sampling : str
        How the model generates, a key of :data:`SAMPLING_KINDS`.
    variance : bool
        A continuous prediction comes with ``extras["log_variance"]`` (a Gaussian).
    max_seq_len : int or None
        Longest time axis the model accepts (context + generated), None when unbounded.
    data_init : bool
        The model has ``init_from_data(batch) -> dict`` (a closed-form fit of part of it, e.g.
        a linear filter); ``fit`` calls it once, before the first step of a new run, on train
        windows of the kind the model takes, and logs the returned summary.
    """

    inputs: str
    outputs: str
    causal: bool = False
    cache: bool = False
    context: tuple[str, ...] = ()
    sampling: str = "none"
    variance: bool = False
    max_seq_len: int | None = None
    data_init: bool = False

    def __post_init__(self) -> None:
        problems = []
        for what, value, allowed in (
            ("inputs", self.inputs, INPUT_KINDS),
            ("outputs", self.outputs, OUTPUT_KINDS),
            ("sampling", self.sampling, SAMPLING_KINDS),
        ):
            if value not in allowed:
                problems.append(f"{what}={value!r} (allowed: {', '.join(allowed)})")
        unknown = sorted(set(self.context) - set(CONTEXT_FIELDS))
        if unknown:
            problems.append(f"context {unknown} (allowed: {', '.join(CONTEXT_FIELDS)})")
        if self.cache and not self.causal:
            problems.append("cache=True needs causal=True")
        if self.sampling == "autoregressive" and not self.causal:
            problems.append("sampling='autoregressive' needs causal=True")
        if self.variance and self.outputs != "prediction":
            problems.append("variance=True needs outputs='prediction'")
        if problems:
            raise ValueError("ModelSpec: " + "; ".join(problems))

    def context_of(self, context: dict[str, Any], *, stop: int | None = None) -> dict[str, Any]:
        """The entries of ``context`` this model takes, per-time ones cut to ``[..., :stop]``."""
        out = {}
        for name in self.context:
            value = context.get(name)
            if value is None:
                continue
            if stop is not None and CONTEXT_FIELDS[name] == "time":
                value = value[..., :stop]
            out[name] = value
        return out


@dataclass
class ModelOutput:
    """What every model's ``forward`` returns.

    Attributes
    ----------
    logits : Tensor or None
        Scores over a vocabulary, e.g. (B, C, T, V) or (B, T, V), or class logits (B, n_classes).
    prediction : Tensor or None
        Continuous prediction (forecast, denoised signal, reconstruction), e.g. (B, C, T).
    loss : Tensor or None
        The model's own loss when targets were given (e.g. GPTCausal with ``targets``).
    aux_losses : dict of str to Tensor
        Auxiliary losses to add to the objective (MoE load balancing, VQ commitment, ...).
    past : Any
        Incremental-decoding cache to pass back on the next call.
    extras : dict
        Anything else (log-determinants, latents, attention maps).
    """

    logits: Any = None
    prediction: Any = None
    loss: Any = None
    aux_losses: dict[str, Any] = field(default_factory=dict)
    past: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Any:
        """Unpack as ``logits, loss = model(...)`` (the reference models' tuple): the logits, or
        the prediction of a model without logits, then the loss."""
        yield self.prediction if self.logits is None else self.logits
        yield self.loss


@dataclass
class TokenizerOutput:
    """What every tokenizer's ``encode`` returns.

    Attributes
    ----------
    codes : Tensor or ndarray (int64)
        Discrete codes; shape depends on the tokenizer: (B, C, T) for per-sample quantizers,
        (B, L, C, T) or (B, L, T', ...) for multi-level (residual) quantizers, (B, T_tokens) for
        flat tokenizers, or None for continuous tokenizers.
    embeddings : Tensor or ndarray or None
        Continuous tokens, e.g. patches (B, C, n_patches, patch_len) or latents (B, T', D).
    n_clipped : int
        Number of input samples that fell outside the representable range and were clipped.
    aux_losses : dict
        Training losses of learned tokenizers (commitment, codebook).
    info : dict
        Anything else needed to decode (lengths, padding added, scales).
    """

    codes: Any = None
    embeddings: Any = None
    n_clipped: int = 0
    aux_losses: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
