"""Sampling a discrete flow-matching denoiser by iterative refinement (``flow_matching`` library).

The probability path is the library's mixture path ``x_t ~ (1 - kappa_t) p_0 + kappa_t
delta_{x_1}`` with a polynomial convex scheduler ``kappa_t = t ** power``; the source ``p_0`` is
uniform over the vocabulary. :func:`sample_flow` integrates the path's CTMC with a discrete Euler
solver in ``n_steps`` network calls on a uniform time grid over [0, 1].

Two solvers give the same process (a parity test compares their sample distributions):

* ``"euler"`` (default): neurofm's lean Euler step. With no divergence-free term the library's
  velocity ``u_t(. | x_t, x_1) = d kappa_t / (1 - kappa_t) * delta_{x_1}`` is a single jump
  target, so a step is: draw ``x_1 ~ p(x_1 | x_t)``, and where ``x_1 != x_t`` jump to it with
  probability ``1 - exp(-h * d kappa_t / (1 - kappa_t))`` (``kappa`` and its derivative from the
  library's scheduler); at the last step ``x_t = x_1``. ``x_1`` is drawn by inverse CDF (one
  uniform per position) instead of ``torch.multinomial`` (``V`` exponential draws per position);
  the library's second categorical draw over the one-hot velocity, which can only return
  ``x_1``, is skipped.
* ``"library"``: ``flow_matching``'s ``MixtureDiscreteEulerSolver``, the reference.

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
    solver: str = "euler",
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
    solver : {"euler", "library"}
        neurofm's lean Euler step or the library's solver (same process; see the module doc).

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
    if solver not in SOLVERS:
        raise ValueError(f"sample_flow: solver must be one of {SOLVERS}, got {solver!r}")
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

    was_training = model.training
    model.eval()
    path = mixture_path(scheduler_power)
    time_grid = torch.linspace(0.0, 1.0, n_steps + 1, device=device)
    try:
        with seeded(seed, device):
            x_init = torch.randint(0, vocab_size, tuple(shape), device=device)
            if codes is not None:
                x_init = torch.where(known, codes, x_init)
            if solver == "library":
                return _library_solve(
                    model, path, x_init, time_grid, vocab_size, temperature, codes, known
                )
            return _euler_solve(model, path, x_init, time_grid, temperature, codes, known)
    finally:
        model.train(was_training)


SOLVERS = ("euler", "library")


def categorical_inverse_cdf(probs: Tensor) -> Tensor:
    """One draw per row of ``probs`` (..., V) by inverse CDF: one uniform per row.

    Classes of probability zero are never drawn (``searchsorted(..., right=True)`` on the
    cumulative sums, the uniform kept strictly below the total).
    """
    cdf = probs.cumsum(dim=-1)
    total = cdf[..., -1:]
    u = torch.rand(total.shape, device=probs.device, dtype=probs.dtype) * total
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=probs.shape[-1] - 1)


def _euler_solve(
    model: nn.Module,
    path: Any,
    x_t: Tensor,
    time_grid: Tensor,
    temperature: float,
    codes: Tensor | None,
    known: Tensor | None,
) -> Tensor:
    """The lean Euler integration (module doc); ``known`` positions keep their tokens."""
    x_t = x_t.clone()
    batch = x_t.shape[0]
    n_steps = len(time_grid) - 1
    for i in range(n_steps):
        t, h = time_grid[i], time_grid[i + 1] - time_grid[i]
        logits = model(t.expand(batch), x_t).logits.float()
        x_1 = categorical_inverse_cdf(torch.softmax(logits / temperature, dim=-1))
        if codes is not None:
            x_1 = torch.where(known, codes, x_1)
        if i == n_steps - 1:
            return x_1
        schedule = path.scheduler(t=t.reshape(1))
        rate = schedule.d_alpha_t / (1 - schedule.alpha_t)
        jump_prob = 1 - torch.exp(-h * rate)
        jump = (torch.rand(x_t.shape, device=x_t.device) < jump_prob) & (x_1 != x_t)
        x_t = torch.where(jump, x_1, x_t)
    return x_t


def _library_solve(
    model: nn.Module,
    path: Any,
    x_init: Tensor,
    time_grid: Tensor,
    vocab_size: int,
    temperature: float,
    codes: Tensor | None,
    known: Tensor | None,
) -> Tensor:
    """``flow_matching``'s ``MixtureDiscreteEulerSolver`` on the tempered posterior."""
    solver_module = require_extra("flow_matching.solver", "flow")
    utils = require_extra("flow_matching.utils", "flow")
    fixed = F.one_hot(codes, vocab_size).float() if codes is not None else None

    class Posterior(utils.ModelWrapper):
        """p(x_1 | x_t) for the solver: the tempered softmax, one-hot at the known positions."""

        def forward(self, x: Tensor, t: Tensor, **extras: Any) -> Tensor:
            probs = torch.softmax(self.model(t, x).logits.float() / temperature, dim=-1)
            if codes is not None:
                probs = torch.where(known[..., None], fixed, probs)
            return probs

    solver = solver_module.MixtureDiscreteEulerSolver(
        model=Posterior(model), path=path, vocabulary_size=vocab_size
    )
    return solver.sample(x_init=x_init, step_size=None, time_grid=time_grid)
