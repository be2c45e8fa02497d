"""Learned token embeddings of spiking and field recordings (the NeuroFM-X input stage).

- :class:`SpikeEventEmbedding`: spike events (unit id, time, optional waveform features)
  ``(B, N)`` -> ``(B, N, d_model)``;
- :class:`BinnedCountEmbedding`: binned counts ``(B, T, n_units)`` -> ``(B, T, d_model)``
  (optional square-root transform, sinusoidal positions); :meth:`BinnedCountEmbedding.multi_rate`
  gives the same embedding at coarser bins (1x, 4x, 16x ...);
- :class:`LFPEmbedding`: field potentials ``(B, C, T)`` -> ``(B, T / pool, d_model)`` from
  multi-scale 1-D convolutions (kernels 3, 5, 7) and band-power features (delta .. gamma).

These are layers, assembled by the ``neurofm_x`` family and trained end to end with it (their
weights live in the model's checkpoint). :mod:`neurofm.tokenizers.neural` registers each behind
the tokenizer interface as well (``spike_tokens``, ``count_tokens``, ``lfp_tokens``), to be fitted
(data statistics), saved and loaded alone; ``docs/architecture.md`` says where they depart from
the tokenizer contract.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BANDS_HZ: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 100.0),
}
"""Frequency bands (Hz) of :class:`LFPEmbedding`'s band-power features."""


def sinusoidal_encoding(positions: Tensor, d_model: int, *, max_period: float = 10000.0) -> Tensor:
    """Sine / cosine features of real-valued ``positions`` (...,) -> (..., d_model), float32.

    Frequencies are spread geometrically from 1 to ``1 / max_period`` per unit of position
    (positions may be time steps or seconds).
    """
    if d_model % 2:
        raise ValueError(f"sinusoidal_encoding: d_model must be even, got {d_model}")
    half = d_model // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=positions.device) / half
    )  # (half,)
    angles = positions.float()[..., None] * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class SpikeEventEmbedding(nn.Module):
    """One token per spike: ``unit_embedding[unit] + sinusoid(time) [+ proj(waveform)]``.

    Parameters
    ----------
    n_units : int
        Size of the unit vocabulary (ids ``0 .. n_units - 1``).
    d_model : int
        Token size (even).
    n_waveform_features : int
        Features per spike (e.g. waveform PCs); 0: none.
    freeze_units : bool
        Keep the unit embeddings fixed at their random initialisation (frozen identities).
    time_scale : float
        Seconds per unit of the timestamp encoding (1e-3: the fastest sinusoid turns once per ms).
    """

    def __init__(
        self,
        n_units: int,
        d_model: int,
        *,
        n_waveform_features: int = 0,
        freeze_units: bool = False,
        time_scale: float = 1e-3,
    ) -> None:
        super().__init__()
        if n_units < 1 or d_model < 2 or d_model % 2:
            raise ValueError(
                f"SpikeEventEmbedding: need n_units >= 1 and an even d_model >= 2, got "
                f"n_units={n_units}, d_model={d_model}"
            )
        self.n_units, self.d_model, self.time_scale = n_units, d_model, time_scale
        self.units = nn.Embedding(n_units, d_model)
        self.units.weight.requires_grad_(not freeze_units)
        self.waveform = nn.Linear(n_waveform_features, d_model) if n_waveform_features else None

    def forward(
        self,
        units: Tensor,
        times: Tensor,
        waveforms: Tensor | None = None,
        *,
        table: nn.Embedding | None = None,
    ) -> Tensor:
        """Embed spikes: ``units`` (B, N) int ids, ``times`` (B, N) s, ``waveforms`` (B, N, F).

        ``table`` replaces the unit identities (other units: a Unit-ID adapter's); the time
        encoding and waveform projection stay this module's. Returns (B, N, d_model).
        """
        identities = self.units if table is None else table
        n_units = identities.num_embeddings
        if units.shape != times.shape:
            raise ValueError(
                f"SpikeEventEmbedding: units {tuple(units.shape)} and times "
                f"{tuple(times.shape)} differ in shape"
            )
        if units.numel() and (units.min() < 0 or units.max() >= n_units):
            raise ValueError(
                f"SpikeEventEmbedding: unit ids must lie in [0, {n_units}), got "
                f"[{int(units.min())}, {int(units.max())}]"
            )
        h = identities(units) + sinusoidal_encoding(times / self.time_scale, self.d_model).to(
            identities.weight.dtype
        )
        if (self.waveform is None) != (waveforms is None):
            raise ValueError(
                "SpikeEventEmbedding: waveforms must be given exactly when n_waveform_features > 0"
            )
        if self.waveform is not None:
            h = h + self.waveform(waveforms)
        return h


class BinnedCountEmbedding(nn.Module):
    """``Linear(f(counts)) + sinusoid(bin index)`` with ``f = sqrt`` or the identity.

    Parameters
    ----------
    n_units : int
        Units (features of the last input axis).
    d_model : int
        Token size (even).
    sqrt_transform : bool
        Square-root transform of the counts (variance stabilisation of Poisson counts).
    """

    def __init__(self, n_units: int, d_model: int, *, sqrt_transform: bool = True) -> None:
        super().__init__()
        if n_units < 1 or d_model < 2 or d_model % 2:
            raise ValueError(
                f"BinnedCountEmbedding: need n_units >= 1 and an even d_model >= 2, got "
                f"n_units={n_units}, d_model={d_model}"
            )
        self.n_units, self.d_model, self.sqrt_transform = n_units, d_model, sqrt_transform
        self.proj = nn.Linear(n_units, d_model)

    def transform(self, counts: Tensor) -> Tensor:
        """The counts as the projection sees them (``sqrt`` of the non-negative counts)."""
        if counts.shape[-1] != self.n_units:
            raise ValueError(
                f"BinnedCountEmbedding: expected counts (B, T, {self.n_units}), got "
                f"{tuple(counts.shape)}"
            )
        counts = counts.to(self.proj.weight.dtype)
        if self.sqrt_transform:
            if (counts < 0).any():
                raise ValueError("BinnedCountEmbedding: negative counts with sqrt_transform")
            return counts.sqrt()
        return counts

    def forward(self, counts: Tensor, *, rate: int = 1) -> Tensor:
        """Embed ``counts`` (B, T, n_units) -> (B, T, d_model); ``rate`` scales the positions."""
        steps = torch.arange(counts.shape[1], device=counts.device) * rate
        return self.proj(self.transform(counts)) + sinusoidal_encoding(steps, self.d_model).to(
            self.proj.weight.dtype
        )

    def multi_rate(self, counts: Tensor, rates: tuple[int, ...]) -> list[Tensor]:
        """The embedding of ``counts`` summed into bins ``rate`` times wider, for each rate.

        Returns one (B, ceil(T / rate), d_model) tensor per rate; the last coarse bin of a
        window whose length ``rate`` does not divide sums the bins that remain (scaled to the
        full bin width, so rates keep their scale).
        """
        out = []
        for rate in rates:
            if rate == 1:
                out.append(self(counts))
                continue
            summed = rate * F.avg_pool1d(
                counts.to(self.proj.weight.dtype).transpose(1, 2), rate, ceil_mode=True
            )
            out.append(self(summed.transpose(1, 2), rate=rate))
        return out


class LFPEmbedding(nn.Module):
    """Multi-scale convolutions plus band powers of field potentials, pooled in time.

    Each kernel size (3, 5, 7) has a ``Conv1d(n_chans -> d_model / n_kernels)`` ("same"
    padding, GELU; the first kernels take the remainder when the kernels do not divide d_model); the band powers are the log mean power of the FFT bins of each band over a
    sliding window of ``pool`` samples, per channel, projected to ``d_model``. Both are averaged
    over non-overlapping blocks of ``pool`` samples and summed.

    Parameters
    ----------
    n_chans : int
        Input channels C.
    d_model : int
        Token size (at least the number of kernels).
    sfreq : float
        Sampling rate (Hz) of the input, for the band edges.
    kernel_sizes : tuple of int
        Convolution kernel sizes (odd).
    pool : int
        Samples per output token.
    """

    def __init__(
        self,
        n_chans: int,
        d_model: int,
        *,
        sfreq: float,
        kernel_sizes: tuple[int, ...] = (3, 5, 7),
        pool: int = 4,
    ) -> None:
        super().__init__()
        if d_model < len(kernel_sizes):
            raise ValueError(
                f"LFPEmbedding: d_model={d_model} is smaller than the {len(kernel_sizes)} "
                "kernel sizes"
            )
        if any(k % 2 == 0 for k in kernel_sizes) or pool < 1 or sfreq <= 0:
            raise ValueError(
                f"LFPEmbedding: kernel sizes must be odd, pool >= 1 and sfreq > 0; got "
                f"{kernel_sizes}, pool={pool}, sfreq={sfreq}"
            )
        self.n_chans, self.pool, self.sfreq = n_chans, pool, float(sfreq)
        n = len(kernel_sizes)  # the first d_model % n kernels get one more feature
        widths = [d_model // n + (i < d_model % n) for i in range(n)]
        self.convs = nn.ModuleList(
            nn.Conv1d(n_chans, w, k, padding=k // 2) for w, k in zip(widths, kernel_sizes)
        )
        self.bands = nn.Linear(n_chans * len(BANDS_HZ), d_model)

    def band_power(self, x: Tensor) -> Tensor:
        """Log band power (B, T / pool, C * n_bands) of ``x`` (B, C, T) over blocks of ``pool``.

        Each block's power spectrum is taken over a window of ``max(pool, sfreq / 2)`` samples
        centred on the block (zero-padded at the edges), so that delta is resolved.
        """
        b, c, t = x.shape
        n_fft = max(self.pool, int(self.sfreq // 2))
        left = (n_fft - self.pool) // 2
        padded = F.pad(x.float(), (left, n_fft - self.pool - left))
        frames = padded.unfold(-1, n_fft, self.pool)  # (B, C, T / pool, n_fft)
        power = torch.fft.rfft(frames * torch.hann_window(n_fft, device=x.device)).abs().square()
        freqs = torch.fft.rfftfreq(n_fft, d=1.0 / self.sfreq).to(x.device)
        bands = []
        for low, high in BANDS_HZ.values():
            inside = (freqs >= low) & (freqs < high)
            if not inside.any():  # a band narrower than the resolution: nearest bin
                inside = (freqs - (low + high) / 2).abs() == (freqs - (low + high) / 2).abs().min()
            bands.append(power[..., inside].mean(-1))
        feats = torch.log1p(torch.stack(bands, dim=-1))  # (B, C, T / pool, n_bands)
        return feats.permute(0, 2, 1, 3).reshape(b, -1, c * len(BANDS_HZ))

    def forward(self, x: Tensor) -> Tensor:
        """Embed ``x`` (B, C, T) -> (B, T / pool, d_model); ``pool`` must divide T."""
        if x.ndim != 3 or x.shape[1] != self.n_chans:
            raise ValueError(
                f"LFPEmbedding: expected x (B, {self.n_chans}, T), got {tuple(x.shape)}"
            )
        if x.shape[-1] % self.pool:
            raise ValueError(f"LFPEmbedding: T={x.shape[-1]} is not a multiple of pool={self.pool}")
        x = x.to(self.bands.weight.dtype)
        conv = torch.cat([F.gelu(conv(x)) for conv in self.convs], dim=1)  # (B, D, T)
        conv = F.avg_pool1d(conv, self.pool).transpose(1, 2)  # (B, T / pool, D)
        return conv + self.bands(self.band_power(x).to(conv.dtype))
