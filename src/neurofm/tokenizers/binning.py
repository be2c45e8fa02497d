"""Uniform and quantile binning: per-channel bins fitted on training data, decoded to bin centres.

- ``uniform``: ``n_levels`` equal-width bins between a low and a high value per channel (the
  ``q`` and ``1 - q`` quantiles, or min and max, of the training data).
- ``quantile``: bin edges at the ``k / n_levels`` quantiles of the training data per channel, so
  every code is used equally often on data distributed like the training data.

Samples outside ``[first edge, last edge]`` get the end code and are counted in ``n_clipped``;
inside the range ``|x - decode(encode(x))| <= bin width / 2``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from neurofm.registry import TOKENIZERS
from neurofm.tokenizers._scalar import ScalarQuantizer, per_channel, pool_signals
from neurofm.tokenizers.base import like_input, to_tensor


@dataclass
class UniformBinningConfig:
    n_levels: int = 256  # number of equal-width bins (the vocabulary size)
    range: Literal["quantile", "minmax"] = "quantile"  # how the per-channel range is fitted
    quantile: float = 0.001  # for range="quantile": the range is [q, 1 - q] quantiles
    max_fit_samples: int = 2_000_000  # most samples per channel pooled for fitting

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_levels": 16},
        "small": {"n_levels": 256},
        "base": {"n_levels": 1024},
    }

    def __post_init__(self) -> None:
        if self.n_levels < 2:
            raise ValueError(f"n_levels must be >= 2, got {self.n_levels}")
        if not 0.0 <= self.quantile < 0.5:
            raise ValueError(f"quantile must lie in [0, 0.5), got {self.quantile}")
        if self.max_fit_samples < 1:
            raise ValueError(f"max_fit_samples must be >= 1, got {self.max_fit_samples}")


@dataclass
class QuantileBinningConfig:
    n_levels: int = 256  # number of equal-count bins (the vocabulary size)
    max_fit_samples: int = 2_000_000  # most samples per channel pooled for fitting

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_levels": 16},
        "small": {"n_levels": 256},
        "base": {"n_levels": 1024},
    }

    def __post_init__(self) -> None:
        if self.n_levels < 2:
            raise ValueError(f"n_levels must be >= 2, got {self.n_levels}")
        if self.max_fit_samples < 1:
            raise ValueError(f"max_fit_samples must be >= 1, got {self.max_fit_samples}")


class _EdgeQuantizer(ScalarQuantizer):
    """Quantizer defined by sorted per-channel bin edges ``(C, n_levels + 1)``."""

    requires_fit = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.register_buffer("edges", torch.zeros(0, config.n_levels + 1, dtype=torch.float64))

    @property
    def fitted_chans(self) -> int:
        return int(self.edges.shape[0])

    def _fit(self, signals: Iterable[np.ndarray]) -> None:
        pooled = pool_signals(signals, self.config.max_fit_samples)  # (C, N)
        self.edges = torch.from_numpy(np.ascontiguousarray(self._edges(pooled)))

    def _edges(self, pooled: np.ndarray) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} defines no _edges")

    def _quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        n_batch, n_chans, n_times = x.shape
        edges = self.edges.to(device=x.device, dtype=x.dtype)  # (C, n_levels + 1)
        flat = x.transpose(0, 1).reshape(n_chans, -1).contiguous()  # (C, B * T)
        codes = torch.searchsorted(edges[:, 1:-1].contiguous(), flat, right=True)
        n_clipped = int(
            torch.count_nonzero(flat < edges[:, :1]) + torch.count_nonzero(flat > edges[:, -1:])
        )
        return codes.reshape(n_chans, n_batch, n_times).transpose(0, 1).contiguous(), n_clipped

    def _dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        edges = self.edges.to(codes.device)
        centres = (edges[:, :-1] + edges[:, 1:]) / 2.0  # (C, n_levels)
        index = codes.transpose(0, 1).reshape(codes.shape[1], -1)  # (C, B * T)
        values = torch.gather(centres, 1, index)
        return values.reshape(codes.shape[1], codes.shape[0], codes.shape[2]).transpose(0, 1)

    def bin_bounds(self, codes: Any) -> tuple[Any, Any]:
        """Lower and upper edge of each code's bin (same shape as ``codes``)."""
        c = self.check_codes(codes)
        edges = self.edges.to(c.device)
        index = c.transpose(0, 1).reshape(c.shape[1], -1)

        def pick(table: torch.Tensor) -> Any:
            v = torch.gather(table, 1, index).reshape(c.shape[1], c.shape[0], c.shape[2])
            return like_input(v.transpose(0, 1).reshape(to_tensor(codes).shape), codes)

        return pick(edges[:, :-1].contiguous()), pick(edges[:, 1:].contiguous())


@TOKENIZERS.register("uniform", config=UniformBinningConfig)
class UniformBinningTokenizer(_EdgeQuantizer):
    """Equal-width bins over a per-channel range fitted on train data, decoded to bin centres."""

    def _edges(self, pooled: np.ndarray) -> np.ndarray:
        if self.config.range == "minmax":
            low, high = pooled.min(axis=1), pooled.max(axis=1)
        else:
            low = np.quantile(pooled, self.config.quantile, axis=1)
            high = np.quantile(pooled, 1.0 - self.config.quantile, axis=1)
        flat = high <= low  # a constant channel: a unit-wide range centred on its value
        low, high = np.where(flat, low - 0.5, low), np.where(flat, high + 0.5, high)
        steps = np.linspace(0.0, 1.0, self.config.n_levels + 1)
        return low[:, None] + (high - low)[:, None] * steps[None, :]

    def _quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        # equal widths allow a direct floor instead of a search
        edges = self.edges
        low = per_channel(edges[:, 0], x)
        high = per_channel(edges[:, -1], x)
        width = (high - low) / self.config.n_levels
        n_clipped = int(torch.count_nonzero(x < low) + torch.count_nonzero(x > high))
        codes = torch.floor((x - low) / width).clamp_(0, self.config.n_levels - 1)
        return codes.to(torch.int64), n_clipped


@TOKENIZERS.register("quantile", config=QuantileBinningConfig)
class QuantileBinningTokenizer(_EdgeQuantizer):
    """Equal-count bins (edges at quantiles of the train data per channel), decoded to centres."""

    def _edges(self, pooled: np.ndarray) -> np.ndarray:
        steps = np.linspace(0.0, 1.0, self.config.n_levels + 1)
        edges = np.quantile(pooled, steps, axis=1).T  # (C, n_levels + 1)
        return np.maximum.accumulate(edges, axis=1)  # guard against rounding making them unsorted
