"""Mu-law tokenizer: per-channel robust scaling, mu-law companding, uniform quantization.

As in WaveNet and the GPT2MEG family: ``y = sign(x) log(1 + mu |x|) / log(1 + mu)`` on the
scaled signal ``x = (raw - center) / scale`` clipped to [-1, 1], then ``n_levels`` uniform steps
over ``y``. Deviations from the usual recipe:

- ``center`` (median) and ``scale`` (a quantile of ``|raw - center|``, or the max) are fitted per
  channel on training data, so no sample of the held-out data informs them.
- Samples with ``|x| > 1`` are clipped to the end codes and counted in ``n_clipped``.
- Decoding returns the bin's centre in the companded domain, so ``|y - y_hat| <= 1 / (n_levels - 1)``
  (half a step) for every sample inside the range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from neurofm.layers.embeddings import mu_law_expand
from neurofm.registry import TOKENIZERS
from neurofm.tokenizers._scalar import (
    ScalarQuantizer,
    empty_like_host,
    per_channel,
    pool_signals,
    safe_scale,
)
from neurofm.tokenizers.base import like_input, to_tensor


@dataclass
class MuLawConfig:
    n_levels: int = 256  # number of codes (the vocabulary size)
    mu: float | None = None  # companding strength; None means n_levels - 1
    scaling: Literal["quantile", "maxabs", "none"] = (
        "quantile"  # how the per-channel scale is fitted
    )
    quantile: float = 0.999  # for scaling="quantile": this quantile of |x - center| maps to 1
    center: bool = True  # subtract the per-channel median fitted on the training data
    max_fit_samples: int = 2_000_000  # most samples per channel pooled for fitting

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_levels": 16},
        "small": {"n_levels": 256},
        "base": {"n_levels": 1024},
    }

    def __post_init__(self) -> None:
        if self.n_levels < 2:
            raise ValueError(f"n_levels must be >= 2, got {self.n_levels}")
        if self.mu is not None and not self.mu > 0:
            raise ValueError(f"mu must be > 0, got {self.mu}")
        if not 0.5 <= self.quantile <= 1.0:
            raise ValueError(f"quantile must lie in [0.5, 1], got {self.quantile}")
        if self.max_fit_samples < 1:
            raise ValueError(f"max_fit_samples must be >= 1, got {self.max_fit_samples}")


def mu_law_compress(x: torch.Tensor, mu: float) -> torch.Tensor:
    """``sign(x) log(1 + mu |x|) / log(1 + mu)`` for ``x`` in [-1, 1] (a new tensor)."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


@TOKENIZERS.register("mulaw", config=MuLawConfig)
class MuLawTokenizer(ScalarQuantizer):
    """Mu-law companding + uniform quantization with per-channel scaling fitted on train data."""

    def __init__(self, config: MuLawConfig) -> None:
        super().__init__(config)
        self.register_buffer("center", torch.zeros(0, dtype=torch.float64))  # (C,) median
        self.register_buffer("scale", torch.zeros(0, dtype=torch.float64))  # (C,) maps to |x| = 1

    @property
    def requires_fit(self) -> bool:  # type: ignore[override]
        return self.config.scaling != "none" or self.config.center

    @property
    def mu(self) -> float:
        """The companding constant actually used."""
        return float(self.config.mu if self.config.mu is not None else self.config.n_levels - 1)

    @property
    def fitted_chans(self) -> int:
        return int(self.scale.numel())

    def _fit(self, signals: Iterable[np.ndarray]) -> None:
        pooled = pool_signals(signals, self.config.max_fit_samples)  # (C, N)
        center = np.median(pooled, axis=1) if self.config.center else np.zeros(len(pooled))
        dev = np.abs(pooled - center[:, None])
        if self.config.scaling == "quantile":
            scale = np.quantile(dev, self.config.quantile, axis=1)
        elif self.config.scaling == "maxabs":
            scale = dev.max(axis=1)
        else:
            scale = np.ones(len(pooled))
        self.center = torch.from_numpy(center)
        self.scale = torch.from_numpy(safe_scale(scale, what="mulaw"))

    def _normalized(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - center) / scale`` as a new tensor (the identity for unfitted, fixed configs)."""
        if self.fitted_chans == 0:
            return x.clone()
        return (x - per_channel(self.center, x)) / per_channel(self.scale, x)

    def _quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        # Two float buffers and the codes, all written in place (no temporaries the size of the
        # input): y = (x - center) / scale; mag = |y|, compressed; the sign comes back from y.
        y = empty_like_host(x)
        if self.fitted_chans:
            torch.sub(x, per_channel(self.center, x), out=y).div_(per_channel(self.scale, x))
        else:
            y.copy_(x)
        mag = empty_like_host(y)
        torch.abs(y, out=mag)
        clipped = mag.numel() > 0 and float(mag.max()) > 1.0
        n_clipped = int(torch.count_nonzero(mag > 1.0)) if clipped else 0
        mag.clamp_(max=1.0).mul_(self.mu).log1p_().mul_(1.0 / math.log1p(self.mu))
        torch.copysign(mag, y, out=mag)
        half = (self.config.n_levels - 1) / 2.0
        codes = empty_like_host(mag, torch.int64)
        codes.copy_(mag.add_(1.0).mul_(half).round_())
        return codes, n_clipped

    def companded(self, x: Any) -> Any:
        """The companded value ``y`` in [-1, 1] of each sample of ``x`` (after scaling, clipping)."""
        t = to_tensor(x).to(torch.float64)
        t = t.unsqueeze(0) if t.ndim == 2 else t
        y = mu_law_compress(self._normalized(t).clamp(-1.0, 1.0), self.mu)
        return like_input(y.reshape(to_tensor(x).shape), x)

    def code_values(self, codes: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The companded value of each code's bin centre, in [-1, 1]."""
        return codes.to(dtype).mul_(2.0 / (self.config.n_levels - 1)).sub_(1.0)

    def _from_companded(self, y: torch.Tensor) -> torch.Tensor:
        x = mu_law_expand(y, self.mu)
        if self.fitted_chans:
            x = x * per_channel(self.scale, x) + per_channel(self.center, x)
        return x

    def _dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        y = empty_like_host(codes, torch.float32)  # (B, C, T): the bin centres, companded
        y.copy_(codes).mul_(2.0 / (self.config.n_levels - 1)).sub_(1.0)
        x = empty_like_host(y)
        # expand in place: fewer passes over large inputs than mu_law_expand; exp - 1 rather
        # than expm1 (several times slower on the CPU): the difference, a few float32 ulps of
        # exp's value, is far below the half bin a decoded value may differ from the input
        torch.abs(y, out=x).mul_(math.log1p(self.mu)).exp_().sub_(1.0).mul_(1.0 / self.mu)
        torch.copysign(x, y, out=x)
        if self.fitted_chans:
            x = x.mul_(per_channel(self.scale, x)).add_(per_channel(self.center, x))
        return x

    def bin_bounds(self, codes: Any) -> tuple[Any, Any]:
        """Signal values at the two edges of each code's bin (half a step either side, clipped)."""
        c = self.check_codes(codes)
        step = 1.0 / (self.config.n_levels - 1)
        y = self.code_values(c)
        low = self._from_companded((y - step).clamp(-1.0, 1.0))
        high = self._from_companded((y + step).clamp(-1.0, 1.0))
        shape = to_tensor(codes).shape
        return like_input(low.reshape(shape), codes), like_input(high.reshape(shape), codes)
