"""A Gaussian copula over channels for sampling all channels of one time step together.

The channel-code models (GPT2MEG and the others over (B, C, T) codes) give each channel's next
code a distribution of its own given the past, and a sampler that draws the channels of a time
step independently. Real EEG/MEG innovations are not independent across channels: the residuals of
a ridge VAR on the shipped EEG sample correlate at 0.40 on average (absolute, 64 channels), from
common sources and the reference. Dynamics learned under correlated innovations, driven by
independent ones, go wrong: that VAR, simulated with independent noise of the right per-channel
size, reaches 1.66x the real standard deviation, and with the full innovation covariance 0.91x.

:class:`ChannelCopula` keeps every channel's predictive distribution exactly as the model gives
it (the marginals, with temperature, top-k and top-p applied) and draws the channels of a step
jointly: ``z ~ N(0, R)``, ``u_c = Phi(z_c)``, and channel ``c`` takes the code at which its
predictive CDF first reaches ``u_c`` (inverse-CDF sampling). With ``R = I`` this is ordinary
independent sampling. :meth:`ChannelCopula.fit` estimates ``R`` as the correlation of the
one-step residuals of a ridge VAR fitted on training windows (a Pearson estimate of the copula's
normal-score correlation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


class ChannelCopula:
    """Gaussian copula with correlation ``R`` (C, C) over the channels of a time step.

    Parameters
    ----------
    correlation : array or Tensor, shape (C, C)
        Symmetric positive-definite correlation matrix (unit diagonal).
    """

    def __init__(self, correlation: np.ndarray | Tensor) -> None:
        r = torch.as_tensor(np.asarray(correlation, dtype=np.float64))
        if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] < 1:
            raise ValueError(f"ChannelCopula: correlation must be (C, C), got {tuple(r.shape)}")
        if not torch.isfinite(r).all():
            raise ValueError("ChannelCopula: correlation holds non-finite entries")
        if (r - r.T).abs().max() > 1e-6:
            raise ValueError("ChannelCopula: correlation must be symmetric")
        if (r.diagonal() - 1.0).abs().max() > 1e-6:
            raise ValueError("ChannelCopula: correlation must have a unit diagonal")
        factor, info = torch.linalg.cholesky_ex(r)
        if info:
            raise ValueError("ChannelCopula: correlation is not positive definite")
        self.correlation = r.float()
        self._factor = factor.float()

    @property
    def n_chans(self) -> int:
        """Number of channels ``C``."""
        return self.correlation.shape[0]

    def uniforms(
        self, batch: int, *, generator: torch.Generator | None = None, device=None
    ) -> Tensor:
        """Draw (batch, C) uniforms whose normal scores have correlation ``R``."""
        device = torch.device("cpu") if device is None else torch.device(device)
        gen_device = generator.device if generator is not None else device
        z = torch.randn(batch, self.n_chans, generator=generator, device=gen_device)
        z = z.to(device) @ self._factor.to(device).T
        return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))

    @classmethod
    def fit(
        cls, windows: Sequence[np.ndarray], *, order: int = 8, ridge: float = 1.0
    ) -> ChannelCopula:
        """Fit ``R`` on training windows (each (C, T), T > ``order``): the correlation of the
        one-step residuals of a ridge VAR of ``order`` lags over all channels."""
        windows = [np.asarray(w, dtype=np.float64) for w in windows]
        if not windows:
            raise ValueError("ChannelCopula.fit: no training windows")
        c = windows[0].shape[0]
        for i, w in enumerate(windows):
            if w.ndim != 2 or w.shape[0] != c or w.shape[1] <= order:
                raise ValueError(
                    f"ChannelCopula.fit: window {i} has shape {w.shape}; every window must be "
                    f"(C={c}, T > order={order})"
                )
            if not np.isfinite(w).all():
                raise ValueError(f"ChannelCopula.fit: window {i} holds non-finite samples")
        lagged = [_lagged(w, order) for w in windows]
        gram = sum(x @ x.T for x, _ in lagged) + ridge * np.eye(order * c)
        cross = sum(y @ x.T for x, y in lagged)  # (C, order * C)
        weights = np.linalg.solve(gram, cross.T).T
        cov = np.cov(np.concatenate([y - weights @ x for x, y in lagged], axis=1))
        scale = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
        corr = cov / np.outer(scale, scale)
        np.fill_diagonal(corr, 1.0)
        return cls((corr + corr.T) / 2)


def _lagged(w: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Lagged design (order * C, T - order) (newest lag first) and targets (C, T - order)."""
    t = w.shape[1]
    x = np.concatenate([w[:, order - 1 - k : t - 1 - k] for k in range(order)], axis=0)
    return x, w[:, order:]


def sample_inverse_cdf(probs: Tensor, uniforms: Tensor) -> Tensor:
    """The id at which each row's CDF of ``probs`` (..., V) first reaches ``uniforms`` (...)."""
    cdf = probs.cumsum(dim=-1)
    # u > 0: never the zero-probability codes before the first allowed one
    u = uniforms.to(cdf.dtype).clamp(1e-7, 1.0) * cdf[..., -1]
    ids = torch.searchsorted(cdf.contiguous(), u.unsqueeze(-1).contiguous())
    return ids.squeeze(-1).clamp(max=probs.shape[-1] - 1)
