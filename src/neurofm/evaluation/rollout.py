"""The model as a forecaster on the baselines' interface, and multi-step rollouts.

:class:`ModelPredictor` gives an autoregressive model over codes the same two methods as the
baselines of :mod:`neurofm.evaluation.baselines`:

- ``predict(codes, start)``: log-probabilities ``(B, C, T - start, V)`` for the targets
  ``codes[..., start:]`` (logits at t predict t+1) and their means in signal space;
- ``forecast(context, horizon)``: point forecasts ``(B, C, horizon)``: the mean of ``n_samples``
  sampled continuations decoded through the code bins (a Monte-Carlo estimate of the
  conditional mean, the forecast that minimises the expected squared error).

:func:`rollout_curves` scores every forecaster on the same windows: error against horizon.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from neurofm.evaluation.baselines import CodeBins
from neurofm.evaluation.metrics import _as_numpy, expected_value, rollout_error
from neurofm.registry import model_spec
from neurofm.types import ModelSpec


def model_context(model: nn.Module, batch: Any, stop: int | None = None) -> dict[str, Any]:
    """The context fields of a :class:`~neurofm.types.Batch` that ``model``'s spec lists
    (per-time ones cut to ``stop`` time steps)."""
    return model_spec(model).context_of(batch.context, stop=stop)


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return torch.device("cpu") if param is None else param.device


def _on(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value


class ModelPredictor:
    """An autoregressive code model as a forecaster (see the module doc).

    Parameters
    ----------
    model : nn.Module
        ``model(x (B, C, T) int64, **context) -> ModelOutput(logits (B, C, T, V))``, eval mode.
    bins : CodeBins
        The tokenizer's code values, to read distributions in signal space.
    context : dict
        Keyword inputs for the model (see :func:`model_context`), for the windows scored next.
    n_samples : int
        Sampled continuations averaged by :meth:`forecast`.
    temperature, top_k, top_p : sampling settings of :meth:`forecast` and :meth:`sample`.
    seed : int
        Seed of the sampled continuations.
    spec : ModelSpec, optional
        The model's spec (default: its registered one).
    """

    name = "model"
    min_context = 1

    def __init__(
        self,
        model: nn.Module,
        bins: CodeBins,
        *,
        context: dict[str, Any] | None = None,
        n_samples: int = 8,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
        spec: ModelSpec | None = None,
    ) -> None:
        self.model = model
        self.bins = bins
        self.context = dict(context or {})
        self.n_samples = int(n_samples)
        self.sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        self.seed = int(seed)
        self.spec = spec or model_spec(model)

    def _kwargs(self, repeat: int = 1, stop: int | None = None) -> dict[str, Any]:
        device = _device(self.model)
        out = {}
        for key, value in self.spec.context_of(self.context, stop=stop).items():
            if isinstance(value, torch.Tensor) and repeat > 1:
                value = value.repeat_interleave(repeat, dim=0)
            out[key] = _on(value, device)
        return out

    @torch.no_grad()
    def log_probs(self, inputs: Any, start: int) -> np.ndarray:
        """Log-probabilities ``(B, C, T - start, V)`` of the codes after ``inputs[..., start-1:-1]``."""
        x = torch.as_tensor(_as_numpy(inputs), dtype=torch.int64, device=_device(self.model))
        logits = self.model(x, **self._kwargs()).logits[..., start - 1 : -1, :]
        return torch.log_softmax(logits.float(), dim=-1).cpu().numpy().astype(np.float64)

    def predict(
        self, codes: Any, start: int, *, inputs: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictions for the targets ``codes[..., start:]``.

        ``inputs`` (same shape as ``codes``) replaces what the model reads, for controls: the
        targets stay the real codes while the context is shuffled or replaced by noise.
        """
        codes = _as_numpy(codes)
        lp = self.log_probs(codes if inputs is None else inputs, start)
        values = self.bins.values[self.bins.rows(codes.shape[1])]  # (C, V)
        point = np.stack([expected_value(lp[:, c], values[c]) for c in range(codes.shape[1])], 1)
        return lp, point

    @torch.no_grad()
    def sample(
        self, prompt: Any, n_new: int, *, seed: int | None = None, repeat: int = 1
    ) -> np.ndarray:
        """Codes ``(B * repeat, C, n_new)`` sampled after ``prompt (B, C, T0)``."""
        from neurofm.generation import SamplingConfig, generate

        x = torch.as_tensor(_as_numpy(prompt), dtype=torch.int64, device=_device(self.model))
        if repeat > 1:
            x = x.repeat_interleave(repeat, dim=0)
        t0 = x.shape[-1]
        out = generate(
            self.model,
            x,
            n_new,
            SamplingConfig(seed=self.seed if seed is None else seed, **self.sampling),
            context=self._kwargs(repeat, stop=t0 + n_new - 1),
            spec=self.spec,
        )
        return out[..., t0:].cpu().numpy()

    def forecast(self, context: Any, horizon: int) -> np.ndarray:
        """Mean of ``n_samples`` decoded continuations, ``(B, C, horizon)``."""
        context = _as_numpy(context)
        b, c = context.shape[:2]
        draws = self.bins.decode(self.sample(context, horizon, repeat=self.n_samples))
        return draws.reshape(b, self.n_samples, c, horizon).mean(axis=1)


def rollout_curves(
    forecasters: dict[str, Any], codes: Any, signal: Any, *, context: int, horizon: int
) -> dict[str, dict[str, list[float]]]:
    """Error against horizon of each forecaster on the same windows.

    Parameters
    ----------
    forecasters : dict of name to object with ``forecast(context_codes, horizon)``
    codes : int array, shape (B, C, T)
        Codes of the windows; the first ``context`` steps are the context.
    signal : array, shape (B, C, T)
        The continuous windows; ``signal[..., context:context + horizon]`` is the truth.
    """
    codes, signal = _as_numpy(codes), _as_numpy(signal)
    if context + horizon > codes.shape[-1]:
        raise ValueError(
            f"rollout: context {context} + horizon {horizon} exceeds the window "
            f"length {codes.shape[-1]}"
        )
    truth = signal[..., context : context + horizon]
    return {
        name: rollout_error(f.forecast(codes[..., :context], horizon), truth)
        for name, f in forecasters.items()
    }
