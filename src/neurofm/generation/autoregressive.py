"""Autoregressive generation for every model over codes, and generation from a real recording.

``generate`` is the one sampler: it uses the model's cache when the model returns one
(``ModelOutput.past``) and recomputes the full context otherwise. ``generate_from_window``
tokenizes a prompt taken from a recorded window, continues it and decodes the result back to a
signal.

Generation longer than the model's ``max_seq_len`` slides the context: the model reads the
window ``codes[..., w0:t]`` that starts at ``w0 = 0``; once that window would exceed
``max_seq_len`` time steps, it restarts from the newest ``max_seq_len - stride`` codes
(``w0 = t - max_seq_len + stride``), which are re-encoded from scratch to rebuild the cache.
Positions restart at 0 in every window, which is valid for relative positions (RoPE) and for a
learned absolute table alike, since the model was trained on windows starting at 0. Within
``max_seq_len`` nothing slides and the result is that of plain generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from neurofm.generation.copula import ChannelCopula
from neurofm.generation.sampling import (
    Generated,
    SamplingConfig,
    autoregress,
    check_context,
    check_prompt,
    filter_logits,
    precision_context,
    sample_logits,
    time_slice,
)
from neurofm.registry import model_spec
from neurofm.types import ModelSpec

__all__ = [
    "GenerationResult",
    "SamplingConfig",
    "filter_logits",
    "generate",
    "generate_from_window",
    "generate_with_logits",
    "sample_logits",
]


def _generator(
    generator: torch.Generator | None, seed: int | None, device: torch.device
) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise ValueError("generate: pass either sampling.seed or generator, not both")
    if seed is None:
        return generator
    return torch.Generator(device=device).manual_seed(int(seed))


def _sliding(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    sampling: SamplingConfig,
    *,
    context: Mapping[str, Tensor],
    generator: torch.Generator | None,
    spec: ModelSpec,
    keep_logits: bool,
    copula: ChannelCopula | None = None,
) -> Generated:
    """``autoregress`` over a context window that slides by ``sampling.stride`` past
    ``max_seq_len``.

    Every window ``codes[..., w0:]`` is continued by plain generation until it holds
    ``max_seq_len`` inputs plus the newly drawn code; the next window keeps the newest
    ``max_seq_len - stride`` codes. ``sampling.seed`` or ``generator`` gives the random stream,
    which runs on across windows; all of it runs in ``sampling.precision``.
    """
    with precision_context(sampling.precision, prompt.device):
        return _slide(
            model,
            prompt,
            max_new_tokens,
            sampling,
            context=context,
            generator=_generator(generator, sampling.seed, prompt.device),
            spec=spec,
            keep_logits=keep_logits,
            copula=copula,
        )


def _slide(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    sampling: SamplingConfig,
    *,
    context: Mapping[str, Tensor],
    generator: torch.Generator,
    spec: ModelSpec,
    keep_logits: bool,
    copula: ChannelCopula | None,
) -> Generated:
    check_prompt(prompt, max_new_tokens, spec)
    max_len, stride = spec.max_seq_len, sampling.stride
    if max_len is not None and stride is not None and not 1 <= stride < max_len:
        raise ValueError(f"generate: stride must be in [1, {max_len}), got {stride}")
    n_prompt = prompt.shape[-1]
    run = {"generator": generator, "spec": spec, "keep_logits": keep_logits, "copula": copula}
    if max_len is None or n_prompt + max_new_tokens - 1 <= max_len:
        return autoregress(model, prompt, max_new_tokens, sampling, context=context, **run)
    stride = max(1, max_len // 4) if stride is None else int(stride)
    if n_prompt > max_len:
        raise ValueError(
            f"generate: the prompt holds {n_prompt} time steps, more than the model's "
            f"max_seq_len={max_len}"
        )
    check_context(context, spec, n_prompt, max_new_tokens)
    codes, logits, start, left = prompt, [], 0, max_new_tokens
    while left:
        # the window codes[..., start:] reads up to max_len inputs, i.e. draws this many codes
        n = min(left, max_len - (codes.shape[-1] - start) + 1)
        window_context = time_slice(context, start, codes.shape[-1] + n)
        out = autoregress(model, codes[..., start:], n, sampling, context=window_context, **run)
        codes = torch.cat((codes[..., :start], out.codes), dim=-1)
        if keep_logits:
            logits.append(out.logits)
        left -= n
        start = codes.shape[-1] - (max_len - stride)
    return Generated(codes, torch.cat(logits, dim=-2) if keep_logits else None)


def generate(
    model: nn.Module,
    prompt_codes: Tensor,
    max_new_tokens: int,
    sampling: SamplingConfig | None = None,
    *,
    context: Mapping[str, Tensor] | None = None,
    generator: torch.Generator | None = None,
    spec: ModelSpec | None = None,
    copula: ChannelCopula | None = None,
) -> Tensor:
    """Continue ``prompt_codes`` with ``max_new_tokens`` codes sampled from ``model``.

    Parameters
    ----------
    model : nn.Module
        A model whose spec says ``sampling="autoregressive"``: ``model(x, **context, past=,
        use_cache=) -> ModelOutput(logits=(..., T, V))`` where time t predicts t+1.
    prompt_codes : LongTensor, shape (B, C, T0) or (B, T0)
        Codes of the model's input kind.
    max_new_tokens : int
        Number of time steps to generate.
    sampling : SamplingConfig, optional
        Temperature (0: greedy), top-k, top-p, seed, cache use, and the stride by which the
        context slides once ``T0 + max_new_tokens - 1`` exceeds the model's ``max_seq_len``
        (in ``[1, max_seq_len)``, default ``max_seq_len // 4``; the model then always reads at
        least the newest ``max_seq_len - stride`` codes; the prompt itself must fit).
    context : mapping of str to Tensor, optional
        Context fields the model's spec lists (``subject`` (B,), ``channel_ids`` (B, C) or
        (C,), per-time ``condition`` covering at least ``T0 + max_new_tokens - 1`` steps, ...).
    generator : torch.Generator, optional
        Generator to draw from instead of ``sampling.seed``.
    spec : ModelSpec, optional
        The model's spec (default: its registered one).
    copula : ChannelCopula, optional
        Draw the channels of each time step jointly (channel codes only; see
        :mod:`neurofm.generation.copula`): each channel's distribution is the model's, the
        channels' innovations correlate as in the training data.

    Returns
    -------
    LongTensor, shape (B, C, T0 + max_new_tokens) or (B, T0 + max_new_tokens)
        The prompt followed by the generated codes.
    """
    return _sliding(
        model,
        prompt_codes,
        max_new_tokens,
        sampling or SamplingConfig(),
        context=dict(context or {}),
        generator=generator,
        spec=spec or model_spec(model),
        keep_logits=False,
        copula=copula,
    ).codes


def generate_with_logits(
    model: nn.Module,
    prompt_codes: Tensor,
    max_new_tokens: int,
    sampling: SamplingConfig | None = None,
    *,
    context: Mapping[str, Tensor] | None = None,
    generator: torch.Generator | None = None,
    spec: ModelSpec | None = None,
    copula: ChannelCopula | None = None,
) -> tuple[Tensor, Tensor]:
    """As :func:`generate` (sliding past ``max_seq_len`` too), also returning the float32 logits
    of every generated step.

    Returns
    -------
    codes : LongTensor, shape (B, C, T0 + N) or (B, T0 + N)
    logits : Tensor, shape (B, C, N, V) or (B, N, V)
        ``logits[..., i, :]`` is the distribution the i-th generated code was drawn from.
    """
    out = _sliding(
        model,
        prompt_codes,
        max_new_tokens,
        sampling or SamplingConfig(),
        context=dict(context or {}),
        generator=generator,
        spec=spec or model_spec(model),
        keep_logits=True,
        copula=copula,
    )
    return out.codes, out.logits


@dataclass
class GenerationResult:
    """What :func:`generate_from_window` returns.

    Attributes
    ----------
    codes : LongTensor, shape (C, T0 + N)
        Prompt codes followed by the generated codes.
    signal : ndarray, shape (C, T0 + N)
        ``tokenizer.decode(codes)``: the prompt's reconstruction followed by the generated signal.
    n_prompt : int
        Number of prompt time steps ``T0``.
    n_clipped : int
        Prompt samples the tokenizer clipped (0 when it does not report it).
    """

    codes: Tensor
    signal: np.ndarray
    n_prompt: int
    n_clipped: int = 0


def generate_from_window(
    model: nn.Module,
    tokenizer: Any,
    window: Any,
    max_new_tokens: int,
    sampling: SamplingConfig | None = None,
    *,
    context: Mapping[str, Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> GenerationResult:
    """Tokenize a recorded window, continue it with ``model`` and decode the result.

    Parameters
    ----------
    model : nn.Module
        An autoregressive model over per-channel codes (B, C, T).
    tokenizer : object
        Has ``encode(x (1, C, T)) -> TokenizerOutput`` (or the codes themselves) and
        ``decode(codes (1, C, T)) -> signal``, e.g. a fitted mu-law tokenizer.
    window : array-like, shape (C, T0)
        The prompt signal in the tokenizer's input units (e.g. ``StoredRecording.window``).
    max_new_tokens : int
        Time steps to generate.
    sampling, context, generator
        As in :func:`generate` (context tensors with a batch axis of 1).

    Returns
    -------
    GenerationResult
    """
    x = torch.as_tensor(np.asarray(window, dtype=np.float32))
    if x.dim() != 2:
        raise ValueError(f"generate_from_window: window must be (C, T), got {tuple(x.shape)}")
    encoded = tokenizer.encode(x.unsqueeze(0))
    codes = torch.as_tensor(getattr(encoded, "codes", encoded))
    if codes.dim() != 3 or codes.shape[:2] != (1, x.shape[0]):
        raise ValueError(
            f"generate_from_window: the tokenizer must give per-channel codes "
            f"(1, {x.shape[0]}, T), got {tuple(codes.shape)}"
        )
    device = next(model.parameters()).device
    out = generate(
        model,
        codes.long().to(device),
        max_new_tokens,
        sampling,
        context={k: v.to(device) for k, v in (context or {}).items()},
        generator=generator,
    )
    decoded = tokenizer.decode(out.cpu())
    signal = decoded.detach().numpy() if isinstance(decoded, Tensor) else np.asarray(decoded)
    return GenerationResult(
        codes=out[0].cpu(),
        signal=signal[0],
        n_prompt=codes.shape[-1],
        n_clipped=int(getattr(encoded, "n_clipped", 0)),
    )
