"""Sampling settings and the autoregressive loop shared by every model over codes.

:class:`SamplingConfig` holds the settings every sampler shares (temperature, top-k, top-p,
seed, cache use, sliding stride); :func:`autoregress` is the one loop for models whose spec says
``sampling="autoregressive"``; it reads the model's :class:`~neurofm.types.ModelSpec` for its
cache, its context fields and ``max_seq_len``. ``generation`` comes before ``models`` in the
import order, so a model's own ``generate`` method calls into it. The public entry point is
:func:`neurofm.generation.generate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from neurofm import checks
from neurofm.generation.copula import ChannelCopula, sample_inverse_cdf
from neurofm.registry import model_spec
from neurofm.types import CONTEXT_FIELDS, ModelSpec


@dataclass
class SamplingConfig:
    """How to sample from a model (shared by the CLI, evaluation, the demo and every sampler)."""

    temperature: float = 1.0  # softmax temperature; 0 decodes greedily (argmax)
    top_k: int | None = None  # sample among the top_k most likely codes only
    top_p: float | None = None  # nucleus sampling: the smallest set holding this probability
    seed: int | None = None  # seed of a fresh generator on the prompt's device
    use_cache: bool = True  # use the model's cache when its spec has one
    stride: int | None = None  # past max_seq_len, steps the context slides by (default 1/4)
    precision: Literal["32", "bf16"] = "32"  # "bf16": the model's matrix products run under
    # bfloat16 autocast (norms and softmax stay float32; logits are sampled in float32): on a
    # CPU with bf16 units a streaming step's projections take about half the time

    PRESETS: ClassVar[dict[str, dict]] = {"greedy": {"temperature": 0.0}}

    def __post_init__(self) -> None:
        checks.non_negative(self, "temperature", note="0 decodes greedily")
        checks.optional_positive(self, "top_k", "stride")
        checks.probability(self, "top_p")
        if self.precision not in ("32", "bf16"):
            raise ValueError(f"precision must be '32' or 'bf16', got {self.precision!r}")


def precision_context(precision: str, device: torch.device) -> AbstractContextManager:
    """The context a model runs in for ``precision``: nothing for ``"32"``, bfloat16 autocast
    on ``device`` for ``"bf16"`` (weights are cast once per context, not once per step)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


@dataclass
class Generated:
    """Result of :func:`autoregress`.

    Attributes
    ----------
    codes : LongTensor, shape (B, T0 + N) or (B, C, T0 + N)
        The prompt followed by the N generated codes.
    logits : Tensor or None, shape (B, N, V) or (B, C, N, V)
        Float32 logits from which each generated code was drawn (when requested).
    """

    codes: Tensor
    logits: Tensor | None = None


def filter_logits(
    logits: Tensor, *, top_k: int | None = None, top_p: float | None = None
) -> Tensor:
    """Set to ``-inf`` the logits outside the ``top_k`` largest and outside the nucleus ``top_p``.

    Parameters
    ----------
    logits : Tensor, shape (..., V)
    top_k : int, optional
        Keep the ``top_k`` highest scores (ties at the threshold are kept).
    top_p : float in (0, 1], optional
        Keep the smallest set of highest-probability entries whose total probability reaches
        ``top_p`` (always at least one).
    """
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop an entry when the entries ranked above it already reach top_p
        drop_sorted = probs.cumsum(dim=-1) - probs >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_logits(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    uniforms: Tensor | None = None,
) -> Tensor:
    """Draw one id per row of ``logits`` (..., V); ``temperature=0`` takes the argmax. With
    ``uniforms`` (...), row ``i`` takes the id at which its CDF reaches ``uniforms[i]``
    (inverse-CDF sampling: a :class:`~neurofm.generation.copula.ChannelCopula` draws them)."""
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    probs = (filter_logits(logits.float() / temperature, top_k=top_k, top_p=top_p)).softmax(-1)
    if uniforms is not None:
        if uniforms.shape != probs.shape[:-1]:
            raise ValueError(
                f"sample_logits: uniforms {tuple(uniforms.shape)} do not match the logits' rows "
                f"{tuple(probs.shape[:-1])}"
            )
        return sample_inverse_cdf(probs, uniforms)
    flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
    return flat.view(probs.shape[:-1])


def check_prompt(prompt: Tensor, max_new_tokens: int, spec: ModelSpec) -> None:
    """Raise unless ``prompt`` holds codes of the model's input kind and ``max_new_tokens >= 1``."""
    if spec.sampling != "autoregressive":
        raise ValueError(f"generate: the model samples by {spec.sampling!r}, not autoregressively")
    ndim = {"channel_codes": 3, "token_sequence": 2}.get(spec.inputs)
    if prompt.dtype.is_floating_point or prompt.dim() != ndim:
        shape = "(B, C, T)" if ndim == 3 else "(B, T)"
        raise ValueError(
            f"generate: the model takes {spec.inputs}; the prompt must be integer codes {shape}, "
            f"got {tuple(prompt.shape)} {prompt.dtype}"
        )
    if prompt.shape[-1] < 1:
        raise ValueError("generate: the prompt must hold at least one time step")
    if max_new_tokens < 1:
        raise ValueError(f"generate: max_new_tokens must be >= 1, got {max_new_tokens}")


def check_context(
    context: Mapping[str, Any], spec: ModelSpec, n_prompt: int, max_new_tokens: int
) -> int:
    """The number of model inputs ``n_prompt + max_new_tokens - 1``; raise when ``context`` holds
    fields the model does not take, or a per-time field that does not cover the inputs."""
    unknown = sorted(set(context) - set(spec.context))
    if unknown:
        raise ValueError(
            f"generate: the model takes no context {unknown}; it takes "
            f"{', '.join(spec.context) or 'none'}"
        )
    n_inputs = n_prompt + max_new_tokens - 1
    for name, value in context.items():
        if CONTEXT_FIELDS[name] == "time" and value.shape[-1] < n_inputs:
            raise ValueError(
                f"generate: {name} covers {value.shape[-1]} time steps, the inputs "
                f"need {n_inputs} (prompt + max_new_tokens - 1)"
            )
    return n_inputs


def time_slice(context: Mapping[str, Any], start: int, stop: int) -> dict[str, Any]:
    """``context`` with its per-time fields cut to ``[..., start:stop]``."""
    return {
        name: value[..., start:stop] if CONTEXT_FIELDS[name] == "time" else value
        for name, value in context.items()
    }


@torch.no_grad()
def autoregress(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    sampling: SamplingConfig | None = None,
    *,
    context: Mapping[str, Tensor] | None = None,
    generator: torch.Generator | None = None,
    spec: ModelSpec | None = None,
    keep_logits: bool = False,
    copula: ChannelCopula | None = None,
) -> Generated:
    """Extend ``prompt`` by ``max_new_tokens`` codes drawn from ``model``.

    The model is called as ``model(x, **context, past=, use_cache=)`` and returns logits
    (..., T, V) where time t predicts t+1. When its spec has a cache and ``sampling.use_cache``,
    the prompt is run once with ``use_cache=True`` and each later step feeds only the newest
    code; otherwise every step recomputes the whole sequence. A model with a ``stream(prompt,
    **context)`` method (whose result has ``logits`` (..., V) of the next code and
    ``step(codes) -> logits`` feeding one time step) is streamed through it instead when the
    cache is on and no context field is per-time. The model is put in eval mode for
    the loop and its mode restored afterwards. ``sampling.seed`` and ``sampling.stride`` are
    not read here (see :func:`neurofm.generation.generate`).

    Parameters
    ----------
    model : nn.Module
    prompt : LongTensor, shape (B, T0) or (B, C, T0)
    max_new_tokens : int
    sampling : SamplingConfig, optional
        Temperature, top-k, top-p and cache use (default: ``SamplingConfig()``).
    context : mapping of str to Tensor, optional
        Context fields the model's spec lists (e.g. ``subject`` (B,), ``channel_ids`` (B, C));
        per-time fields (``condition``) cover at least ``T0 + max_new_tokens - 1`` steps.
    generator : torch.Generator, optional
        Source of randomness, for reproducible samples.
    spec : ModelSpec, optional
        The model's spec (default: its registered one).
    keep_logits : bool
        Also return the logits of every step.
    copula : ChannelCopula, optional
        Draw the C channels of each time step jointly through this Gaussian copula (each
        channel's distribution unchanged; see :mod:`neurofm.generation.copula`); channel codes
        (B, C, T0) only.
    """
    sampling = sampling or SamplingConfig()
    spec = spec or model_spec(model)
    context = dict(context or {})
    check_prompt(prompt, max_new_tokens, spec)
    n_inputs = check_context(context, spec, prompt.shape[-1], max_new_tokens)
    if spec.max_seq_len is not None and n_inputs > spec.max_seq_len:
        raise ValueError(
            f"generate: prompt ({prompt.shape[-1]}) + max_new_tokens "
            f"({max_new_tokens}) - 1 = {n_inputs} exceeds the model's "
            f"max_seq_len={spec.max_seq_len}"
        )
    use_cache = sampling.use_cache and spec.cache
    if copula is not None and (prompt.dim() != 3 or prompt.shape[1] != copula.n_chans):
        raise ValueError(
            f"generate: the channel copula is over {copula.n_chans} channels; the prompt "
            f"{tuple(prompt.shape)} must be channel codes (B, {copula.n_chans}, T0)"
        )

    was_training = model.training
    model.eval()
    n_prompt = prompt.shape[-1]
    # the output is written in place: no sequence grown by concatenation at every step
    codes = prompt.new_empty(*prompt.shape[:-1], n_prompt + max_new_tokens)
    codes[..., :n_prompt] = prompt
    step_logits: list[Tensor] = []
    stream = getattr(model, "stream", None) if use_cache else None
    per_time = [name for name in context if CONTEXT_FIELDS[name] == "time"]
    try:
        if stream is not None and not per_time:
            streamer = stream(prompt, **context)
            step = streamer.step
            logits = streamer.logits
        else:
            step, past = None, None
        for i in range(max_new_tokens):
            t = n_prompt + i
            if step is not None:  # the model's own streamer (prepared once)
                if i:
                    logits = step(codes[..., t - 1])
            else:
                if past is not None:  # feed the newest code only
                    out = model(
                        codes[..., t - 1 : t],
                        past=past,
                        use_cache=True,
                        **time_slice(context, t - 1, t),
                    )
                elif use_cache:  # the prompt, asking for a cache
                    out = model(
                        codes[..., :t], past=None, use_cache=True, **time_slice(context, 0, t)
                    )
                else:  # recompute the whole sequence
                    out = model(codes[..., :t], **time_slice(context, 0, t))
                if use_cache:
                    past = out.past
                logits = out.logits[..., -1, :].float()  # (B, V) or (B, C, V)
            if keep_logits:
                step_logits.append(logits)
            uniforms = None
            if copula is not None and sampling.temperature != 0.0:
                uniforms = copula.uniforms(
                    prompt.shape[0], generator=generator, device=logits.device
                )
            codes[..., t] = sample_logits(
                logits,
                temperature=sampling.temperature,
                top_k=sampling.top_k,
                top_p=sampling.top_p,
                generator=generator,
                uniforms=uniforms,
            )
    finally:
        model.train(was_training)
    return Generated(codes, torch.stack(step_logits, dim=-2) if keep_logits else None)
