"""The NeuroFM-X input stages as continuous tokenizers: spike rasters, binned counts, LFP.

Each wraps one embedding of :mod:`neurofm.layers.neural_tokens` behind the tokenizer interface
(``(B, C, T)`` in, ``TokenizerOutput.embeddings`` out, saved and loaded alone as safetensors +
JSON). Their weights are trained end to end inside a model (``fit`` fits only statistics of the
data, never the weights), so a freshly built tokenizer embeds with its initial weights.

- ``spike_tokens``: a spike raster (B, U, T) at ``sfreq`` (the number of spikes of each unit in
  each sample) -> one token per spike (B, N, d_model); the spikes themselves, packed as
  :mod:`neurofm.data.spike_events` lays them out, are kept in ``info["events"]``, from which
  ``decode`` rebuilds the raster exactly;
- ``count_tokens``: binned counts (B, U, T) (units on the channel axis, as every neurofm signal)
  -> (B, T, d_model) (sqrt transform, linear projection, sinusoidal positions); with ``rates``
  (1, 4, 16) the multi-rate tokens of each rate, concatenated in time (``info["lengths"]``);
  ``decode`` inverts the rate-1 tokens by least squares (exact while d_model >= U);
- ``lfp_tokens``: field potentials (B, C, T) -> (B, T / pool, d_model), after the per-channel
  centre and scale fitted on the train data (``fit``); no decode (band powers and pooling are
  not invertible: ``decodable = False``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from neurofm.data.spike_events import PAD_UNIT
from neurofm.layers.neural_tokens import (
    BinnedCountEmbedding,
    LFPEmbedding,
    SpikeEventEmbedding,
    sinusoidal_encoding,
)
from neurofm.registry import TOKENIZERS
from neurofm.tokenizers.base import Tokenizer, like_input, signal_batch, to_tensor
from neurofm.types import TokenizerOutput


def _counts(x: Any, name: str, n_units: int) -> tuple[torch.Tensor, bool]:
    t, added = signal_batch(x, name=name)
    if t.shape[1] != n_units:
        raise ValueError(
            f"{name}: expected {n_units} units (B, {n_units}, T), got {tuple(t.shape)}"
        )
    if (t < 0).any() or (t != t.round()).any():
        raise ValueError(f"{name}: counts must be non-negative integers")
    return t, added


@dataclass
class SpikeTokensConfig:
    n_units: int = 96  # units of the raster (its channel axis)
    d_model: int = 768  # token size (even)
    sfreq: float = 1000.0  # samples per second of the raster
    n_waveform_features: int = 0  # kept at 0: a raster has no waveforms
    freeze_units: bool = False  # fixed unit identity embeddings
    time_scale: float = 1e-3  # seconds per unit of the time sinusoids
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_units": 4, "d_model": 8},
        "small": {"d_model": 128},
        "base": {},
    }

    def __post_init__(self) -> None:
        if self.n_units < 1 or self.d_model < 2 or self.d_model % 2 or self.sfreq <= 0:
            raise ValueError(
                f"spike_tokens: need n_units >= 1, an even d_model >= 2 and sfreq > 0, got "
                f"n_units={self.n_units}, d_model={self.d_model}, sfreq={self.sfreq}"
            )
        if self.n_waveform_features:
            raise ValueError("spike_tokens: n_waveform_features must be 0 (a raster has none)")


@TOKENIZERS.register("spike_tokens", config=SpikeTokensConfig)
class SpikeTokenizer(Tokenizer):
    """Spike raster (B, U, T) -> one token per spike (B, N, d): unit identity + time sinusoid."""

    codes_layout = None

    def __init__(self, config: SpikeTokensConfig) -> None:
        super().__init__(config)
        self.embed = SpikeEventEmbedding(
            config.n_units,
            config.d_model,
            freeze_units=config.freeze_units,
            time_scale=config.time_scale,
        )

    def codes_shape(self, input_shape: tuple[int, ...]) -> None:
        return None

    def events(self, x: Any) -> torch.Tensor:
        """The spikes of a raster (B, U, T) packed as (B, N, 2): unit id, time (s); padding -1."""
        t, _ = _counts(x, "spike_tokens", self.config.n_units)
        rows = []
        for item in t:
            unit, sample = torch.nonzero(item, as_tuple=True)
            repeats = item[unit, sample].long()
            unit, sample = unit.repeat_interleave(repeats), sample.repeat_interleave(repeats)
            order = torch.argsort(sample * self.config.n_units + unit, stable=True)
            rows.append(torch.stack([unit[order], sample[order]], dim=1).double())
        n_max = max((len(r) for r in rows), default=0)
        out = torch.zeros(len(rows), n_max, 2, dtype=torch.float64)
        out[..., 0] = PAD_UNIT
        for b, r in enumerate(rows):
            out[b, : len(r), 0] = r[:, 0]
            out[b, : len(r), 1] = r[:, 1] / self.config.sfreq
        return out

    def encode(self, x: Any) -> TokenizerOutput:
        """Raster (B, U, T) or (U, T) -> ``embeddings`` (B, N, d) (padding tokens are zero);
        ``info``: ``events`` (B, N, 2), ``n_spikes`` per item, ``n_times``."""
        t, added = signal_batch(x, name="spike_tokens")
        events = self.events(t).to(t.device)
        valid = events[..., 0] != PAD_UNIT
        units = torch.where(valid, events[..., 0], torch.zeros_like(events[..., 0])).long()
        dtype = self.embed.units.weight.dtype
        tokens = self.embed(units, events[..., 1].to(dtype)) * valid[..., None]
        info = {
            "events": events[0] if added else events,
            "n_spikes": valid.sum(dim=1).tolist(),
            "n_times": int(t.shape[-1]),
        }
        return TokenizerOutput(embeddings=like_input(tokens[0] if added else tokens, x), info=info)

    def decode(self, codes: Any) -> Any:
        """The raster (B, U, T) of a TokenizerOutput's ``info["events"]`` (exact)."""
        if not isinstance(codes, TokenizerOutput) or "events" not in codes.info:
            raise ValueError(
                "spike_tokens: decode needs the TokenizerOutput of encode (its events)"
            )
        events = to_tensor(codes.info["events"])
        single = events.ndim == 2
        events = events[None] if single else events
        raster = torch.zeros(events.shape[0], self.config.n_units, codes.info["n_times"])
        for b, row in enumerate(events):
            row = row[row[:, 0] != PAD_UNIT]
            sample = torch.round(row[:, 1] * self.config.sfreq).long()
            raster[b].index_put_((row[:, 0].long(), sample), torch.ones(len(row)), accumulate=True)
        return like_input(raster[0] if single else raster, codes.embeddings)


@dataclass
class CountTokensConfig:
    n_units: int = 96  # units (the channel axis of the counts)
    d_model: int = 768  # token size (even)
    sqrt_transform: bool = True  # square root of the counts before the projection
    rates: tuple[int, ...] = (1,)  # bins pooled per token of each rate, e.g. (1, 4, 16)
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_units": 4, "d_model": 8, "rates": (1, 4)},
        "small": {"d_model": 128, "rates": (1, 4)},
        "base": {"rates": (1, 4, 16)},
    }

    def __post_init__(self) -> None:
        self.rates = tuple(int(r) for r in self.rates)
        if not self.rates or self.rates[0] != 1 or len(set(self.rates)) != len(self.rates):
            raise ValueError(
                f"count_tokens: rates must be distinct and start at 1, got {self.rates}"
            )


@TOKENIZERS.register("count_tokens", config=CountTokensConfig)
class CountTokenizer(Tokenizer):
    """Binned counts (B, U, T) -> (B, T, d) tokens (sqrt, projection, positions), multi-rate."""

    codes_layout = None

    def __init__(self, config: CountTokensConfig) -> None:
        super().__init__(config)
        self.embed = BinnedCountEmbedding(
            config.n_units, config.d_model, sqrt_transform=config.sqrt_transform
        )

    def codes_shape(self, input_shape: tuple[int, ...]) -> None:
        return None

    def embeddings_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        *batch, _, n_times = input_shape
        n_tokens = sum(-(-n_times // r) for r in self.config.rates)
        return (*batch, n_tokens, self.config.d_model)

    def encode(self, x: Any) -> TokenizerOutput:
        """Counts (B, U, T) or (U, T) -> ``embeddings`` (B, sum_r ceil(T / r), d): the tokens of
        each rate in turn; ``info["lengths"]`` their lengths, ``info["rates"]`` the rates."""
        t, added = _counts(x, "count_tokens", self.config.n_units)
        streams = self.embed.multi_rate(t.transpose(1, 2), self.config.rates)
        tokens = torch.cat(streams, dim=1)
        info = {"rates": list(self.config.rates), "lengths": [s.shape[1] for s in streams]}
        return TokenizerOutput(embeddings=like_input(tokens[0] if added else tokens, x), info=info)

    def decode(self, codes: Any) -> Any:
        """Counts (B, U, T) from the rate-1 tokens, by least squares through the projection."""
        source = codes.embeddings if isinstance(codes, TokenizerOutput) else codes
        tokens = to_tensor(source).to(self.embed.proj.weight.dtype)
        single = tokens.ndim == 2
        tokens = tokens[None] if single else tokens
        if isinstance(codes, TokenizerOutput):
            tokens = tokens[:, : codes.info["lengths"][0]]
        steps = torch.arange(tokens.shape[1], device=tokens.device)
        centred = tokens - sinusoidal_encoding(steps, self.config.d_model) - self.embed.proj.bias
        weight = self.embed.proj.weight  # (d, U)
        values = torch.linalg.lstsq(weight.expand(len(tokens), -1, -1), centred.transpose(1, 2))
        values = values.solution.clamp_min(0)  # (B, U, T)
        counts = values.square() if self.config.sqrt_transform else values
        counts = counts.detach()
        return like_input(counts[0] if single else counts, source)


@dataclass
class LFPTokensConfig:
    n_chans: int = 64  # channels
    d_model: int = 768  # token size
    sfreq: float = 1000.0  # sampling rate (Hz), for the band edges
    pool: int = 4  # samples per token
    kernel_sizes: tuple[int, ...] = (3, 5, 7)  # convolution kernels (odd)
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_chans": 4, "d_model": 12, "sfreq": 160.0},
        "small": {"d_model": 128},
        "base": {},
    }

    def __post_init__(self) -> None:
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)
        if self.n_chans < 1 or self.pool < 1 or self.sfreq <= 0:
            raise ValueError(
                f"lfp_tokens: need n_chans >= 1, pool >= 1 and sfreq > 0, got {self.n_chans}, "
                f"{self.pool}, {self.sfreq}"
            )


@TOKENIZERS.register("lfp_tokens", config=LFPTokensConfig)
class LFPTokenizer(Tokenizer):
    """Field potentials (B, C, T) -> (B, T / pool, d): scaled per channel (fitted), multi-scale
    convolutions and band powers."""

    codes_layout = None
    requires_fit = True
    decodable = False

    def __init__(self, config: LFPTokensConfig) -> None:
        super().__init__(config)
        self.embed = LFPEmbedding(
            config.n_chans,
            config.d_model,
            sfreq=config.sfreq,
            kernel_sizes=config.kernel_sizes,
            pool=config.pool,
        )
        self.register_buffer("center", torch.zeros(config.n_chans, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(config.n_chans, dtype=torch.float64))

    def codes_shape(self, input_shape: tuple[int, ...]) -> None:
        return None

    def embeddings_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        *batch, _, n_times = input_shape
        return (*batch, n_times // self.config.pool, self.config.d_model)

    def _fit(self, signals: Iterable[np.ndarray]) -> None:
        """Per-channel median and scale (1.4826 x the median absolute deviation) of the data."""
        parts = []
        for arr in signals:
            self.channel_check(arr.shape[0], self.config.n_chans)
            parts.append(np.asarray(arr, dtype=np.float64))
        data = np.concatenate(parts, axis=1)
        center = np.median(data, axis=1)
        scale = 1.4826 * np.median(np.abs(data - center[:, None]), axis=1)
        if not (scale > 0).all():
            flat = np.flatnonzero(~(scale > 0)).tolist()
            raise ValueError(f"lfp_tokens: channels {flat} are constant in the fit data")
        self.center = torch.from_numpy(center)
        self.scale = torch.from_numpy(scale)

    def normalize(self, x: Any) -> Any:
        """``(x - center) / scale`` per channel, (B, C, T) or (C, T), in the input's type."""
        self.check_fitted()
        t, added = signal_batch(x, name="lfp_tokens")
        self.channel_check(t.shape[1], self.config.n_chans)
        out = (t - self.center[:, None].to(t)) / self.scale[:, None].to(t)
        return like_input(out[0] if added else out, x)

    def encode(self, x: Any) -> TokenizerOutput:
        """Signal (B, C, T) or (C, T) -> ``embeddings`` (B, T / pool, d); ``pool`` divides T."""
        t, added = signal_batch(self.normalize(to_tensor(x)), name="lfp_tokens")
        tokens = self.embed(t.to(self.embed.bands.weight.dtype))
        info = {"n_times": int(t.shape[-1]), "pool": self.config.pool}
        return TokenizerOutput(embeddings=like_input(tokens[0] if added else tokens, x), info=info)

    def decode(self, codes: Any) -> Any:
        raise TypeError(
            "lfp_tokens: the tokens cannot be decoded to a signal (band powers and temporal "
            "pooling are not invertible)"
        )
