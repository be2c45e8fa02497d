"""Sampling a discrete flow-matching denoiser by iterative refinement (``flow_matching`` library).

The probability path is the library's mixture path ``x_t ~ (1 - kappa_t) p_0 + kappa_t
delta_{x_1}`` with a polynomial convex scheduler ``kappa_t = t ** power``; the source ``p_0`` is
uniform over the vocabulary. :func:`sample_flow` integrates the path's CTMC with the library's
discrete Euler solver in ``n_steps`` network calls on a uniform time grid over [0, 1].

Conditional generation (forecasting, gap filling) keeps the ``known`` positions fixed: they start
at their given tokens and the posterior the solver sees there is a one-hot on that token, so the
probability velocity vanishes and they never jump; every other position is generated.

The denoiser is any model whose spec has ``sampling="flow"``: ``model(t, x_t)`` with ``t`` (B,)
in [0, 1] and ids (B, T), returning ``ModelOutput.logits`` (B, T, V).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.errors import require_extra


def mixture_path(scheduler_power: float = 1.0) -> Any:
    """The library's ``MixtureDiscreteProbPath`` with ``PolynomialConvexScheduler(scheduler_power)``."""
    path = require_extra("flow_matching.path", "flow")
    scheduler = require_extra("flow_matching.path.scheduler", "flow")
    return path.MixtureDiscreteProbPath(
        scheduler=scheduler.PolynomialConvexScheduler(n=scheduler_power)
    )


def seeded(seed: int | None, device: torch.device) -> Any:
    """A context in which the global RNG (the ``flow_matching`` solver's) starts from ``seed``;
    the caller's RNG state is restored afterwards. ``None``: no seeding."""
    if seed is None:
        return nullcontext()
    devices = [device] if device.type == "cuda" else []
    context = torch.random.fork_rng(devices=devices)

    class _Seeded:
        def __enter__(self) -> None:
            context.__enter__()
            torch.manual_seed(seed)

        def __exit__(self, *exc: Any) -> None:
            context.__exit__(*exc)

    return _Seeded()


@torch.no_grad()
def sample_flow(
    model: nn.Module,
    shape: tuple[int, int],
    *,
    n_steps: int,
    vocab_size: int,
    temperature: float = 1.0,
    codes: Tensor | None = None,
    known: Tensor | None = None,
    scheduler_power: float = 1.0,
    seed: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Generate token ids (B, T) from a flow denoiser in ``n_steps`` refinement steps.

    Parameters
    ----------
    model : nn.Module
        A denoiser with spec ``sampling="flow"``.
    shape : (B, T)
        Batch and sequence length.
    n_steps : int
        Network calls (Euler steps) from t = 0 to t = 1.
    vocab_size : int
        V, the model's vocabulary.
    temperature : float
        Divides the logits before the softmax.
    codes, known : LongTensor (B, T), BoolTensor (B, T), optional
        Given tokens and where they are kept fixed (conditional generation); both or neither.
    scheduler_power : float
        Power of the convex scheduler ``kappa_t = t ** power`` (as in training).
    seed : int, optional
        Seeds the sampler's noise: the same seed gives the same samples.
    device : optional
        Where to sample (default: the model's parameters' device).

    Returns
    -------
    LongTensor, shape (B, T)
    """
    if n_steps < 1:
        raise ValueError(f"sample_flow: n_steps must be >= 1, got {n_steps}")
    if not temperature > 0:
        raise ValueError(f"sample_flow: temperature must be > 0, got {temperature}")
    if (codes is None) != (known is None):
        raise ValueError("sample_flow: give codes and known together (conditional) or neither")
    solver_module = require_extra("flow_matching.solver", "flow")
    utils = require_extra("flow_matching.utils", "flow")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    if codes is not None:
        if tuple(codes.shape) != tuple(shape) or tuple(known.shape) != tuple(shape):
            raise ValueError(
                f"sample_flow: codes {tuple(codes.shape)} and known {tuple(known.shape)} must "
                f"have shape {tuple(shape)}"
            )
        codes, known = codes.to(device), known.to(device).bool()
        fixed = F.one_hot(codes, vocab_size).float()  # (B, T, V)

    class Posterior(utils.ModelWrapper):
        """p(x_1 | x_t) for the solver: the tempered softmax, one-hot at the known positions."""

        def forward(self, x: Tensor, t: Tensor, **extras: Any) -> Tensor:
            probs = torch.softmax(self.model(t, x).logits.float() / temperature, dim=-1)
            if codes is not None:
                probs = torch.where(known[..., None], fixed, probs)
            return probs

    was_training = model.training
    model.eval()
    solver = solver_module.MixtureDiscreteEulerSolver(
        model=Posterior(model), path=mixture_path(scheduler_power), vocabulary_size=vocab_size
    )
    time_grid = torch.linspace(0.0, 1.0, n_steps + 1, device=device)
    try:
        with seeded(seed, device):
            x_init = torch.randint(0, vocab_size, tuple(shape), device=device)
            if codes is not None:
                x_init = torch.where(known, codes, x_init)
            out = solver.sample(x_init=x_init, step_size=None, time_grid=time_grid)
    finally:
        model.train(was_training)
    return out
