"""The model as a forecaster on the baselines' interface, and multi-step rollouts.

:class:`ModelPredictor` gives an autoregressive model over codes the same two methods as the
baselines of :mod:`neurofm.evaluation.baselines`:

- ``predict(codes, start)``: log-probabilities ``(B, C, T - start, V)`` for the targets
  ``codes[..., start:]`` (logits at t predict t+1) and their means in signal space;
- ``forecast(context, horizon)``: point forecasts ``(B, C, horizon)``: at the first step the
  exact mean of the model's predictive distribution over the code values; later, the mean of
  ``n_samples`` sampled continuations decoded through the code bins (a Monte-Carlo estimate of
  the conditional mean, the forecast that minimises the expected squared error).

:meth:`ModelPredictor.truncated_log_probs` scores each position with only its last ``k`` steps
of context (the truncated-context control). :class:`FlatPredictor` gives a model over one flat
token sequence (``gpt_causal`` on the ``flat`` tokenizer) the same interface, through the
tokenizer's layout.

:func:`rollout_curves` scores every forecaster on the same windows: error against horizon.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from neurofm.evaluation.baselines import CodeBins
from neurofm.evaluation.metrics import _as_numpy, expected_value, rollout_error
from neurofm.registry import model_spec
from neurofm.types import CONTEXT_FIELDS, ModelSpec


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
    copula : ChannelCopula, optional
        Draw the channels of each sampled step jointly (see :mod:`neurofm.generation.copula`).
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
        copula: Any = None,
        seed: int = 0,
        spec: ModelSpec | None = None,
    ) -> None:
        self.model = model
        self.copula = copula
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
        logits = self.model(x, **self._kwargs(stop=x.shape[-1])).logits[..., start - 1 : -1, :]
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
            copula=self.copula,
        )
        return out[..., t0:].cpu().numpy()

    def forecast(self, context: Any, horizon: int) -> np.ndarray:
        """Mean forecasts ``(B, C, horizon)``: the exact mean at the first step, then the mean of
        ``n_samples`` decoded continuations."""
        context = _as_numpy(context)
        b, c, n_ctx = context.shape
        _, first = self.predict(np.concatenate([context, context[..., -1:]], axis=-1), n_ctx)
        out = np.empty((b, c, horizon))
        out[..., 0] = first[..., 0]
        if horizon > 1:
            draws = self.bins.decode(self.sample(context, horizon, repeat=self.n_samples))
            out[..., 1:] = draws.reshape(b, self.n_samples, c, horizon).mean(axis=1)[..., 1:]
        return out

    def truncated_log_probs(
        self, codes: Any, start: int, steps: int, stride: int = 1
    ) -> np.ndarray:
        """Log-probabilities ``(B, C, P, V)`` of the targets ``codes[..., start::stride]``
        (``P`` of them), each target at ``t`` predicted from the ``steps`` codes
        ``t - steps .. t - 1`` only (a window of ``steps + 1`` codes whose last one is the target,
        so a causal model never reads it). Per-window context is repeated; per-time context is
        cut like the codes."""
        if not 1 <= steps <= start:
            raise ValueError(f"truncated context: need 1 <= steps <= start={start}, got {steps}")
        if stride < 1:
            raise ValueError(f"truncated context: stride must be >= 1, got {stride}")
        codes = _as_numpy(codes)
        b, c, n_times = codes.shape
        cut = np.lib.stride_tricks.sliding_window_view(codes[..., start - steps :], steps + 1, -1)
        cut = cut[:, :, ::stride]  # (B, C, P, steps + 1)
        n_pos = cut.shape[2]
        cut = cut.transpose(0, 2, 1, 3).reshape(b * n_pos, c, steps + 1)  # (B * P, C, steps + 1)
        context = {}
        for name, value in self.spec.context_of(self.context).items():
            if CONTEXT_FIELDS[name] == "time":
                value = value.unfold(-1, steps + 1, 1)[..., start - steps :, :][..., ::stride, :]
                value = value.movedim(-2, 1).reshape(b * n_pos, *value.shape[1:-2], steps + 1)
            else:
                value = value.repeat_interleave(n_pos, dim=0)
            context[name] = value
        out = []
        for lo in range(0, len(cut), TRUNCATED_CHUNK):
            part = copy.copy(self)
            part.context = {k: v[lo : lo + TRUNCATED_CHUNK] for k, v in context.items()}
            out.append(part.log_probs(cut[lo : lo + TRUNCATED_CHUNK], steps))  # (n, C, 1, V)
        return np.concatenate(out).reshape(b, n_pos, c, -1).transpose(0, 2, 1, 3)


TRUNCATED_CHUNK = 512
"""Short windows per model call of :meth:`ModelPredictor.truncated_log_probs`."""


class FlatPredictor(ModelPredictor):
    """A model over one flat token sequence (spec inputs ``token_sequence``) as a forecaster over
    ``(channel, time)`` codes, through the layout of its flat tokenizer.

    ``layout.positions(C, T)`` gives the channel and time of each flat token. The model reads
    the window's codes in that order; the logits at flat position ``j - 1`` are the prediction of
    the code at position ``j``, put back at its ``(channel, time)``. With ``order="time"`` the
    code of channel ``c`` at ``t`` is thus predicted from every code before ``t`` **and** the
    channels before ``c`` at ``t`` (the sequence's own factorisation; still a code length of the
    same codes). Sampling continues the flat sequence time step by time step, which needs a
    layout whose first ``C * T0`` tokens are the first ``T0`` time steps.
    """

    def __init__(self, model: nn.Module, bins: CodeBins, *, layout: Any, **kwargs: Any) -> None:
        if kwargs.get("copula") is not None:
            raise ValueError(
                "channel_copula: a flat token sequence draws one channel's code at a time (each "
                "given the channels before it); the copula is for models over channel codes"
            )
        super().__init__(model, bins, **kwargs)
        self.layout = layout

    def _positions(self, n_chans: int, n_times: int) -> tuple[np.ndarray, np.ndarray]:
        channel, time = self.layout.positions(n_chans, n_times)
        return _as_numpy(channel), _as_numpy(time)

    @torch.no_grad()
    def log_probs(self, inputs: Any, start: int) -> np.ndarray:
        codes = _as_numpy(inputs)
        b, c, n_times = codes.shape
        channel, time = self._positions(c, n_times)
        tokens = torch.as_tensor(codes[:, channel, time], dtype=torch.int64)
        logits = self.model(tokens.to(_device(self.model)), **self._kwargs()).logits
        flat = torch.log_softmax(logits.float(), dim=-1).cpu().numpy().astype(np.float64)
        if time[0] >= start:
            raise ValueError(f"flat layout: the first token (time {time[0]}) is scored")
        grid = np.zeros((b, c, n_times, flat.shape[-1]))
        grid[:, channel[1:], time[1:]] = flat[:, :-1]  # token j predicted at position j - 1
        return grid[:, :, start:]

    @torch.no_grad()
    def sample(
        self, prompt: Any, n_new: int, *, seed: int | None = None, repeat: int = 1
    ) -> np.ndarray:
        from neurofm.generation import SamplingConfig, generate

        codes = _as_numpy(prompt)
        b, c, t0 = codes.shape
        channel, time = self._positions(c, t0 + n_new)
        if np.any(time[: c * t0] >= t0):
            raise ValueError(
                "flat layout: sampling continuations needs a layout that reads time in order "
                "(tokenizer order='time', or block_causal with a prompt of whole time blocks)"
            )
        head_channel, head_time = self._positions(c, t0)
        x = torch.as_tensor(codes[:, head_channel, head_time], dtype=torch.int64)
        x = x.to(_device(self.model)).repeat_interleave(repeat, dim=0)
        out = (
            generate(
                self.model,
                x,
                c * n_new,
                SamplingConfig(seed=self.seed if seed is None else seed, **self.sampling),
                context=self._kwargs(repeat),
                spec=self.spec,
            )
            .cpu()
            .numpy()
        )
        grid = np.empty((len(out), c, t0 + n_new), dtype=np.int64)
        grid[:, channel, time] = out
        return grid[..., t0:]


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
