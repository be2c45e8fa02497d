"""Shared machinery of the per-sample quantizers (mu-law, uniform and quantile binning).

Each maps every channel-sample to one of ``n_levels`` codes with per-channel statistics fitted on
training data, counts the samples outside the representable range (clipped), and decodes a code to
a value inside its bin (the reconstruction error is at most half a bin inside the range).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from neurofm.logging import get_logger
from neurofm.tokenizers.base import Tokenizer, like_input, signal_batch, to_tensor
from neurofm.types import TokenizerOutput

log = get_logger("tokenizers")


def empty_like_host(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An uninitialised tensor shaped like ``t`` (on its device), for large intermediate results.

    On the CPU the memory comes from numpy's allocator, which asks the kernel for transparent huge
    pages on large arrays: the first touch of hundreds of megabytes then costs several times less
    than with torch's default CPU allocator (each fresh 4 KiB page faults separately).
    """
    dtype = dtype or t.dtype
    if t.device.type != "cpu" or dtype not in _NUMPY_DTYPES:
        return torch.empty(t.shape, dtype=dtype, device=t.device)
    return torch.from_numpy(np.empty(tuple(t.shape), dtype=_NUMPY_DTYPES[dtype]))


_NUMPY_DTYPES = {
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.int64: np.int64,
    torch.bool: np.bool_,
}


def check_finite(t: torch.Tensor, *, name: str = "x") -> None:
    """Raise a ValueError naming batch item, channel and sample of the first non-finite value.

    A finite sum proves every value finite (a NaN or infinity makes the sum non-finite); only
    when it is not (a non-finite value, or an overflow of the sum) is every value tested.
    """
    if math.isfinite(float(t.sum())):
        return
    if not bool(torch.isfinite(t).all()):
        b, c, s = (int(i) for i in torch.nonzero(~torch.isfinite(t))[0])
        raise ValueError(
            f"{name}: non-finite value {float(t[b, c, s])} at item {b}, channel {c}, "
            f"sample {s}; clean or mask the data before tokenizing"
        )


class FitPool:
    """An evenly strided, bounded subsample of ``(C, T)`` training segments, per channel.

    Segments are strided as one long sequence; when more than ``max_samples`` samples per channel
    are held, every second one is dropped and the stride doubles, so memory stays bounded and the
    subsample stays spread over all the data seen.

    Parameters
    ----------
    max_samples : int
        Most samples kept per channel.
    """

    def __init__(self, max_samples: int) -> None:
        self.max_samples = int(max_samples)
        self.stride = 1
        self.offset = 0
        self.parts: list[np.ndarray] = []
        self.n_kept = 0
        self.n_chans: int | None = None
        self.n_items = 0

    def add(self, segment: np.ndarray) -> None:
        """Add one ``(C, T)`` segment (its non-finite values raise, naming channel and sample)."""
        index = self.n_items
        self.n_items += 1
        if self.n_chans is None:
            self.n_chans = int(segment.shape[0])
        elif segment.shape[0] != self.n_chans:
            raise ValueError(
                f"fit data item {index}: {segment.shape[0]} channels, earlier items "
                f"had {self.n_chans}"
            )
        start = self.offset
        part = np.asarray(segment[:, start :: self.stride], dtype=np.float64)
        self.offset = (start - segment.shape[1]) % self.stride
        bad = ~np.isfinite(part)
        if bad.any():
            c, s = np.argwhere(bad)[0]
            raise ValueError(
                f"fit data item {index}: non-finite value at channel {c}, sample "
                f"{start + s * self.stride}"
            )
        self.parts.append(part)
        self.n_kept += part.shape[1]
        while self.n_kept > self.max_samples:
            pooled = np.concatenate(self.parts, axis=1)[:, ::2]
            self.parts, self.n_kept, self.stride = [pooled], pooled.shape[1], self.stride * 2

    def samples(self) -> np.ndarray:
        """The pooled ``(C, N)`` float64 samples; raises when nothing was added."""
        if not self.parts or self.n_kept == 0:
            raise ValueError("fit data is empty: give at least one (C, T) segment with T > 0")
        return np.concatenate(self.parts, axis=1)


def pool_signals(signals: Iterable[np.ndarray], max_samples: int) -> np.ndarray:
    """Pool ``(C, T)`` segments into a bounded ``(C, N)`` float64 subsample (see FitPool)."""
    pool = FitPool(max_samples)
    for segment in signals:
        pool.add(segment)
    return pool.samples()


class ScalarQuantizer(Tokenizer):
    """Base of per-sample quantizers: ``(B, C, T)`` float -> ``(B, C, T)`` int64 codes and back.

    Subclasses define ``_quantize(x) -> (codes, n_clipped)``, ``_dequantize(codes)``,
    ``bin_bounds(codes)`` and ``fitted_chans``.
    """

    codes_layout = "B C T"

    @property
    def vocab_size(self) -> int:
        return int(self.config.n_levels)

    @property
    def fitted_chans(self) -> int:
        """Channels the statistics were fitted on (0 when they are channel-free)."""
        raise TypeError(f"{type(self).__name__} defines no fitted_chans")

    def _quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        raise TypeError(f"{type(self).__name__} defines no _quantize")

    def _dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} defines no _dequantize")

    def bin_bounds(self, codes: Any) -> tuple[Any, Any]:
        """Lower and upper signal value of the bin of each code (same shape as ``codes``)."""
        raise TypeError(f"{type(self).__name__} defines no bin_bounds")

    def encode(self, x: Any) -> TokenizerOutput:
        """Quantize ``x`` of shape (B, C, T) or (C, T) to int64 codes of the same shape.

        Returns
        -------
        TokenizerOutput
            ``codes`` in ``[0, vocab_size)``; ``n_clipped`` samples were outside the fitted range
            and got the nearest end code; ``info["n_samples"]`` channel-samples were encoded.
        """
        self.check_fitted()
        t, added = signal_batch(x)
        check_finite(t)
        self.channel_check(t.shape[1], self.fitted_chans)
        codes, n_clipped = self._quantize(t)
        if added:
            codes = codes[0]
        return TokenizerOutput(
            codes=like_input(codes, x), n_clipped=int(n_clipped), info={"n_samples": int(t.numel())}
        )

    def check_codes(self, codes: Any) -> torch.Tensor:
        """Codes as a ``(B, C, T)`` int64 tensor, checked to lie in ``[0, vocab_size)``."""
        if isinstance(codes, TokenizerOutput):
            codes = codes.codes
        c = to_tensor(codes)
        if c.ndim == 2:
            c = c.unsqueeze(0)
        if c.ndim != 3 or c.is_floating_point():
            raise ValueError(
                f"codes: expected integer (B, C, T) or (C, T), got {c.dtype} {tuple(c.shape)}"
            )
        if c.numel():
            low, high = (int(v) for v in torch.aminmax(c))
            if low < 0 or high >= self.vocab_size:
                raise ValueError(
                    f"codes: values must lie in [0, {self.vocab_size}), got [{low}, {high}]"
                )
        self.channel_check(c.shape[1], self.fitted_chans)
        return c.long()

    def decode(self, codes: Any) -> Any:
        """Codes (B, C, T) or (C, T) (or a TokenizerOutput) -> float32 signal of the same shape."""
        self.check_fitted()
        source = codes.codes if isinstance(codes, TokenizerOutput) else codes
        c = self.check_codes(source)
        out = self._dequantize(c).to(torch.float32)
        if to_tensor(source).ndim == 2:
            out = out[0]
        return like_input(out, source)


def per_channel(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-channel ``(C,)`` statistic as ``(C, 1)`` on the device and dtype of ``like``."""
    return values.to(device=like.device, dtype=like.dtype).reshape(-1, 1)


def safe_scale(scale: np.ndarray, *, what: str) -> np.ndarray:
    """Replace zero per-channel scales (flat channels) by the median of the others (or 1)."""
    scale = np.asarray(scale, dtype=np.float64).copy()
    flat = scale <= 0
    if flat.any():
        log.warning(
            "%s: channels %s are flat in the fit data; their scale is set from the other channels",
            what,
            np.flatnonzero(flat).tolist(),
        )
        scale[flat] = np.median(scale[~flat]) if (~flat).any() else 1.0
    return scale
