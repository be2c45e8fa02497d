"""Frequency-band decomposition for next-band (VAR-style) prediction, and its ``.npz`` samples.

``cumulative_frequency_levels`` filters a ``(C, T)`` signal into bands with zero-phase FIR filters
and returns the running sums ``delta, delta + theta, ..., delta + ... + gamma`` as
``(n_bands, C, T)``. Default bands (Hz): delta 0.5-4, theta 4-8, alpha 8-13, beta 13-30,
gamma 30-50.

Filters: one odd length for all bands (from the narrowest transition band, 3.3 / transition
seconds, the Hamming-window rule MNE uses), windowed-sinc band-passes from ``scipy.signal.firwin``
with ``scale=False``, so that adjacent bands sharing an edge sum exactly to the band-pass over
their union; applied as a centred convolution (zero phase) after reflecting the signal at both
ends by half the filter length. Levels are computed by one FFT per channel and one inverse FFT
per level (:func:`apply_filter_bank`), the designs cached per (sfreq, bands, length).

The ``bands`` tokenizer returns these levels as continuous ``embeddings (B, L, C, T)``; with
``include_residual`` a last level holds the full signal, so that decoding is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from neurofm.errors import RecordingError
from neurofm.registry import TOKENIZERS
from neurofm.tokenizers.base import Tokenizer, like_input, signal_batch, to_tensor
from neurofm.types import TokenizerOutput

DEFAULT_BANDS: tuple[tuple[float, float], ...] = (
    (0.5, 4.0),
    (4.0, 8.0),
    (8.0, 13.0),
    (13.0, 30.0),
    (30.0, 50.0),
)
BAND_NAMES = ("delta", "theta", "alpha", "beta", "gamma")


def check_bands(bands: Any, sfreq: float) -> list[tuple[float, float]]:
    """Validate bands: ``0 <= low < high <= sfreq / 2``, sorted and not overlapping."""
    out = [(float(lo), float(hi)) for lo, hi in bands]
    if not out:
        raise ValueError("bands: give at least one (low, high) band")
    nyquist = sfreq / 2.0
    for i, (lo, hi) in enumerate(out):
        if not 0.0 <= lo < hi <= nyquist:
            raise ValueError(
                f"bands[{i}] = ({lo}, {hi}) Hz: need 0 <= low < high <= "
                f"Nyquist ({nyquist} Hz at sfreq {sfreq} Hz)"
            )
        if i and lo < out[i - 1][1]:
            raise ValueError(f"bands[{i}] = ({lo}, {hi}) Hz overlaps or precedes bands[{i - 1}]")
    return out


def default_n_taps(sfreq: float, bands: Any) -> int:
    """Odd filter length ``3.3 / transition * sfreq`` for the narrowest transition band."""
    transitions = []
    for lo, hi in bands:
        if lo > 0:
            transitions.append(min(max(0.25 * lo, 2.0), lo))
        if hi < sfreq / 2.0:
            transitions.append(min(max(0.25 * hi, 2.0), sfreq / 2.0 - hi))
    width = min(transitions) if transitions else sfreq / 4.0
    return int(math.ceil(3.3 * sfreq / width)) | 1


def design_band_filter(sfreq: float, low: float, high: float, n_taps: int) -> np.ndarray:
    """Symmetric (zero-phase when centred) FIR band-pass with -6 dB points at ``low``/``high``.

    ``low == 0`` gives a low-pass and ``high == sfreq / 2`` a high-pass.
    """
    from scipy.signal import firwin

    if n_taps % 2 == 0:
        raise ValueError(f"n_taps must be odd (a symmetric zero-phase filter), got {n_taps}")
    nyquist = sfreq / 2.0
    if low <= 0.0 and high >= nyquist:
        taps = np.zeros(n_taps)
        taps[n_taps // 2] = 1.0
        return taps
    if low <= 0.0:
        return firwin(n_taps, high, fs=sfreq, scale=False)
    if high >= nyquist:
        return firwin(n_taps, low, fs=sfreq, pass_zero=False, scale=False)
    return firwin(n_taps, [low, high], fs=sfreq, pass_zero=False, scale=False)


def band_filter(
    signal: np.ndarray, sfreq: float, low: float, high: float, n_taps: int | None = None
) -> np.ndarray:
    """Zero-phase FIR band-pass of ``signal`` (..., T) along time; same shape, float64."""
    from scipy.signal import oaconvolve

    signal = np.asarray(signal, dtype=np.float64)
    n_taps = n_taps or default_n_taps(sfreq, [(low, high)])
    if signal.shape[-1] < 2:
        raise ValueError(f"band_filter: need at least 2 samples, got {signal.shape[-1]}")
    taps = design_band_filter(sfreq, low, high, n_taps)
    half = n_taps // 2
    pad = [(0, 0)] * (signal.ndim - 1) + [(half, half)]
    padded = np.pad(signal, pad, mode="reflect")
    return oaconvolve(padded, taps.reshape((1,) * (signal.ndim - 1) + (-1,)), mode="valid", axes=-1)


@lru_cache(maxsize=64)
def band_taps(sfreq: float, bands: tuple[tuple[float, float], ...], n_taps: int) -> np.ndarray:
    """The band-pass filters of ``bands`` as (n_bands, n_taps) float64 (designed once, read-only)."""
    taps = np.stack([design_band_filter(sfreq, lo, hi, n_taps) for lo, hi in bands])
    taps.setflags(write=False)
    return taps


def apply_filter_bank(
    signal: np.ndarray, taps: np.ndarray, chunk: int = 8, reflect: str = "even"
) -> np.ndarray:
    """Every filter of ``taps`` (K, N), N odd, applied zero-phase to ``signal`` (..., T).

    The signal is reflected at both ends by ``N // 2`` samples (``reflect="even"``: mirrored
    about the end sample, as :func:`band_filter`; ``"odd"``: also negated about it,
    ``2 x[0] - x[n]``, as MNE's ``filter_data`` pads by default), its FFT
    is taken once per channel and multiplied by each filter's, so that K filters cost one
    forward and K inverse FFTs; channels go ``chunk`` at a time to bound memory. The result,
    (K, ..., T) float64, equals the direct convolution to float64 rounding.
    """
    from scipy.fft import irfft, next_fast_len, rfft

    signal = np.asarray(signal, dtype=np.float64)
    taps = np.asarray(taps, dtype=np.float64)
    if taps.ndim != 2 or taps.shape[1] % 2 == 0:
        raise ValueError(f"apply_filter_bank: taps must be (K, N) with N odd, got {taps.shape}")
    if signal.shape[-1] < 2:
        raise ValueError(f"apply_filter_bank: need at least 2 samples, got {signal.shape[-1]}")
    if reflect not in ("even", "odd"):
        raise ValueError(f"apply_filter_bank: reflect must be 'even' or 'odd', got {reflect!r}")
    n_taps, n_times = taps.shape[1], signal.shape[-1]
    half = n_taps // 2
    rows = signal.reshape(-1, n_times)
    padded_len = n_times + 2 * half
    n_fft = next_fast_len(padded_len, real=True)
    spectra = rfft(taps, n_fft, axis=-1)[:, None]  # (K, 1, F)
    out = np.empty((len(taps), len(rows), n_times))
    for lo in range(0, len(rows), chunk):
        padded = np.pad(
            rows[lo : lo + chunk], [(0, 0), (half, half)], mode="reflect", reflect_type=reflect
        )
        full = irfft(rfft(padded, n_fft, axis=-1)[None] * spectra, n_fft, axis=-1)
        out[:, lo : lo + chunk] = full[..., n_taps - 1 : padded_len]
    return out.reshape(len(taps), *signal.shape)


def band_components(
    signal: np.ndarray, sfreq: float, bands: Any = DEFAULT_BANDS, n_taps: int | None = None
) -> np.ndarray:
    """Each band of ``signal`` (C, T) as ``(n_bands, C, T)`` float64 (same filter length)."""
    bands = check_bands(bands, sfreq)
    n_taps = n_taps or default_n_taps(sfreq, bands)
    return apply_filter_bank(signal, band_taps(float(sfreq), tuple(bands), int(n_taps)))


def cumulative_frequency_levels(
    signal: np.ndarray, sfreq: float, bands: Any = DEFAULT_BANDS, n_taps: int | None = None
) -> np.ndarray:
    """Running sums of the bands of ``signal`` (C, T): ``(n_bands, C, T)`` float64.

    Level ``k`` holds bands ``0..k`` (delta, delta + theta, ...), the VAR-style stages. The
    filters are summed before filtering (filtering is linear), so each level is one filter of
    :func:`apply_filter_bank`.
    """
    bands = check_bands(bands, sfreq)
    n_taps = n_taps or default_n_taps(sfreq, bands)
    taps = np.cumsum(band_taps(float(sfreq), tuple(bands), int(n_taps)), axis=0)
    return apply_filter_bank(signal, taps)


@dataclass
class BandSample:
    """One ``.npz`` sample of a next-band dataset (the fields of the file)."""

    signal: np.ndarray  # (C, T) float32
    cumulative_bands: np.ndarray  # (n_bands, C, T) float32
    bands: np.ndarray  # (n_bands, 2) float32, Hz
    sfreq: float  # Hz


def save_band_sample(
    path: str | Path,
    signal: np.ndarray,
    sfreq: float,
    bands: Any = DEFAULT_BANDS,
    cumulative_bands: np.ndarray | None = None,
) -> Path:
    """Write ``signal``, ``cumulative_bands``, ``bands`` and ``sfreq`` to a compressed ``.npz``.

    ``cumulative_bands`` is computed with :func:`cumulative_frequency_levels` when not given.
    """
    signal = np.asarray(signal, dtype=np.float32)
    bands = check_bands(bands, sfreq)
    if cumulative_bands is None:
        cumulative_bands = cumulative_frequency_levels(signal, sfreq, bands)
    levels = np.asarray(cumulative_bands, dtype=np.float32)
    if levels.shape != (len(bands), *signal.shape):
        raise ValueError(
            f"{path}: cumulative_bands has shape {levels.shape}, expected "
            f"{(len(bands), *signal.shape)}"
        )
    path = Path(path)
    np.savez_compressed(
        path,
        signal=signal,
        cumulative_bands=levels,
        bands=np.asarray(bands, dtype=np.float32),
        sfreq=np.float32(sfreq),
    )
    return path


def load_band_sample(path: str | Path) -> BandSample:
    """Read and check a ``.npz`` sample; every problem names the file and the field."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise RecordingError(f"cannot read band sample: {err}", path=str(path)) from err
    for key in ("signal", "cumulative_bands", "bands", "sfreq"):
        if key not in fields:
            raise RecordingError(f"missing field {key!r} (has {sorted(fields)})", path=str(path))
    signal, levels, bands = fields["signal"], fields["cumulative_bands"], fields["bands"]
    sfreq = float(fields["sfreq"])
    if signal.ndim != 2:
        raise RecordingError(f"field 'signal' must be (C, T), got {signal.shape}", path=str(path))
    if bands.ndim != 2 or bands.shape[1] != 2:
        raise RecordingError(
            f"field 'bands' must be (n_bands, 2), got {bands.shape}", path=str(path)
        )
    if levels.shape != (len(bands), *signal.shape):
        raise RecordingError(
            f"field 'cumulative_bands' has shape {levels.shape}, expected "
            f"{(len(bands), *signal.shape)}",
            path=str(path),
        )
    if not sfreq > 0:
        raise RecordingError(f"field 'sfreq' must be positive, got {sfreq}", path=str(path))
    return BandSample(signal=signal, cumulative_bands=levels, bands=bands, sfreq=sfreq)


def _default_bands() -> list[list[float]]:
    return [list(b) for b in DEFAULT_BANDS]


@dataclass
class BandsConfig:
    sfreq: float | None = None  # sampling frequency of the inputs (Hz); None: the data's

    bands: list[list[float]] = field(default_factory=_default_bands)  # [low, high] Hz, ascending
    n_taps: int | None = None  # FIR length (odd); None: 3.3 / narrowest transition seconds
    include_residual: bool = True  # add the full signal as a last level (exact decoding)

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"sfreq": 100.0, "bands": [[1.0, 8.0], [8.0, 30.0]], "n_taps": 51}
    }

    def __post_init__(self) -> None:
        if self.sfreq is not None and not self.sfreq > 0:
            raise ValueError(f"sfreq must be > 0, got {self.sfreq}")
        if any(len(b) != 2 for b in self.bands):
            raise ValueError(f"bands: each band is [low, high], got {self.bands}")
        if self.sfreq is not None:
            check_bands(self.bands, self.sfreq)
        if self.n_taps is not None and (self.n_taps < 1 or self.n_taps % 2 == 0):
            raise ValueError(f"n_taps must be a positive odd number, got {self.n_taps}")


@TOKENIZERS.register("bands", config=BandsConfig)
class BandsTokenizer(Tokenizer):
    """Cumulative frequency levels (delta, +theta, ...) as continuous tokens (B, L, C, T)."""

    codes_layout = None

    @property
    def n_levels(self) -> int:
        """Number of levels L: the bands, plus one for the full signal with ``include_residual``."""
        return len(self.config.bands) + int(self.config.include_residual)

    def codes_shape(self, input_shape: tuple[int, ...]) -> None:
        return None

    def check_data(self, sfreq: float) -> list[str]:
        """Take the data's sampling rate when ``sfreq`` is not set; a set one must equal it (the
        band filters are designed for that rate)."""
        sfreq = float(sfreq)
        if self.config.sfreq is None:
            try:
                check_bands(self.config.bands, sfreq)
            except ValueError as err:
                return [f"tokenizer.bands: {err}"]
            self.config.sfreq = sfreq
            return []
        if not math.isclose(self.config.sfreq, sfreq, rel_tol=1e-9):
            return [
                f"tokenizer.sfreq: {self.config.sfreq} Hz, but the data are sampled at {sfreq} "
                "Hz; the band filters would pass the wrong frequencies: remove tokenizer.sfreq "
                "(it is then taken from the data) or set it to the data's rate"
            ]
        return []

    def _rate(self) -> float:
        if self.config.sfreq is None:
            raise RuntimeError(
                "tokenizer 'bands' has no sfreq: set it, or let fit take it from the data "
                "(check_data(sfreq))"
            )
        return float(self.config.sfreq)

    def embeddings_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        *batch, n_chans, n_times = input_shape
        return (*batch, self.n_levels, n_chans, n_times)

    def encode(self, x: Any) -> TokenizerOutput:
        """Signal (B, C, T) or (C, T) -> ``embeddings`` (B, L, C, T) or (L, C, T), float32."""
        t, added = signal_batch(x)
        signal = t.detach().cpu().numpy()
        levels = np.stack(
            [
                cumulative_frequency_levels(
                    item, self._rate(), self.config.bands, self.config.n_taps
                )
                for item in signal
            ]
        )
        if self.config.include_residual:
            levels = np.concatenate([levels, signal[:, None].astype(np.float64)], axis=1)
        out = torch.from_numpy(levels.astype(np.float32)).to(t.device)
        out = out[0] if added else out
        info = {"bands": [list(b) for b in self.config.bands], "sfreq": self.config.sfreq}
        return TokenizerOutput(embeddings=like_input(out, x), info=info)

    def decode(self, codes: Any) -> Any:
        """Levels (B, L, C, T) / (L, C, T) (or the TokenizerOutput) -> the last level (B, C, T).

        Exact with ``include_residual``; otherwise the band-limited signal.
        """
        source = codes.embeddings if isinstance(codes, TokenizerOutput) else codes
        levels = to_tensor(source)
        if levels.ndim not in (3, 4) or levels.shape[-3] != self.n_levels:
            raise ValueError(
                f"decode: expected levels (B, {self.n_levels}, C, T) or "
                f"({self.n_levels}, C, T), got {tuple(levels.shape)}"
            )
        return like_input(levels[..., -1, :, :], source)
