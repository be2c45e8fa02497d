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

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from neurofm.models._sampling import (
    Generated,
    autoregress,
    check_condition,
    filter_logits,
    sample_logits,
)

__all__ = [
    "GenerationResult",
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
        raise ValueError("generate: pass either seed or generator, not both")
    if seed is None:
        return generator
    return torch.Generator(device=device).manual_seed(int(seed))


def _sliding(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    *,
    stride: int | None,
    seed: int | None,
    generator: torch.Generator | None,
    condition: Tensor | None,
    keep_logits: bool,
    **kwargs: Any,
) -> Generated:
    """``autoregress`` over a context window that slides by ``stride`` past ``max_seq_len``.

    Every window ``codes[..., w0:]`` is continued by plain generation until it holds
    ``max_seq_len`` inputs plus the newly drawn code; the next window keeps the newest
    ``max_seq_len - stride`` codes. ``seed`` or ``generator`` gives the random stream, which runs
    on across windows; ``kwargs`` are the other arguments of ``autoregress`` (sampling settings,
    subject, channel_ids, use_cache).
    """
    kwargs["generator"] = _generator(generator, seed, prompt.device)
    max_len = getattr(model, "max_seq_len", None)
    if max_len is not None and stride is not None and not 1 <= stride < max_len:
        raise ValueError(f"generate: stride must be in [1, {max_len}), got {stride}")
    n_prompt = prompt.shape[-1]
    if max_len is None or n_prompt + max_new_tokens - 1 <= max_len:
        return autoregress(
            model, prompt, max_new_tokens, condition=condition, keep_logits=keep_logits, **kwargs
        )
    max_len = int(max_len)
    stride = max(1, max_len // 4) if stride is None else int(stride)
    if n_prompt > max_len:
        raise ValueError(
            f"generate: the prompt holds {n_prompt} time steps, more than the model's "
            f"max_seq_len={max_len}"
        )
    check_condition(condition, n_prompt, max_new_tokens)
    codes, logits, start, left = prompt, [], 0, max_new_tokens
    while left:
        # the window codes[..., start:] reads up to max_len inputs, i.e. draws this many codes
        n = min(left, max_len - (codes.shape[-1] - start) + 1)
        cond = None if condition is None else condition[..., start:]
        out = autoregress(
            model, codes[..., start:], n, condition=cond, keep_logits=keep_logits, **kwargs
        )
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
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    subject: Tensor | None = None,
    condition: Tensor | None = None,
    channel_ids: Tensor | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    stride: int | None = None,
) -> Tensor:
    """Continue ``prompt_codes`` with ``max_new_tokens`` codes sampled from ``model``.

    Parameters
    ----------
    model : nn.Module
        An autoregressive model: ``model(x, *, subject, condition, channel_ids, past,
        use_cache) -> ModelOutput(logits=(..., T, V))`` where time t predicts t+1.
    prompt_codes : LongTensor, shape (B, C, T0) or (B, T0)
    max_new_tokens : int
        Number of time steps to generate.
    temperature : float
        Softmax temperature; 0 decodes greedily (argmax).
    top_k : int, optional
        Sample among the ``top_k`` most likely codes only.
    top_p : float in (0, 1], optional
        Nucleus sampling: the smallest set of codes holding probability ``top_p``.
    subject : LongTensor (B,), optional
    condition : LongTensor (B, T) or (B, n_cond_tokens, T), optional
        Per-time condition covering at least ``T0 + max_new_tokens - 1`` time steps.
    channel_ids : LongTensor (B, C) or (C,), optional
    seed : int, optional
        Seed of a fresh generator on the prompt's device (reproducible samples).
    generator : torch.Generator, optional
        Generator to draw from instead of a seed.
    use_cache : bool
        Use the model's key/value cache when it has one (False: recompute every step).
    stride : int, optional
        Only when ``T0 + max_new_tokens - 1`` exceeds the model's ``max_seq_len``: time steps
        the context slides by once it is full, in ``[1, max_seq_len)`` (default
        ``max_seq_len // 4``); the model then always reads at least the newest
        ``max_seq_len - stride`` codes (see the module doc). The prompt itself must fit.

    Returns
    -------
    LongTensor, shape (B, C, T0 + max_new_tokens) or (B, T0 + max_new_tokens)
        The prompt followed by the generated codes.
    """
    return _sliding(
        model,
        prompt_codes,
        max_new_tokens,
        stride=stride,
        seed=seed,
        generator=generator,
        condition=condition,
        keep_logits=False,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        subject=subject,
        channel_ids=channel_ids,
        use_cache=use_cache,
    ).codes


def generate_with_logits(
    model: nn.Module,
    prompt_codes: Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    subject: Tensor | None = None,
    condition: Tensor | None = None,
    channel_ids: Tensor | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    stride: int | None = None,
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
        stride=stride,
        seed=seed,
        generator=generator,
        condition=condition,
        keep_logits=True,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        subject=subject,
        channel_ids=channel_ids,
        use_cache=use_cache,
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
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    subject: int | None = None,
    condition: Tensor | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    stride: int | None = None,
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
    temperature, top_k, top_p, condition, seed, generator, use_cache, stride
        As in :func:`generate`.
    subject : int, optional
        The recording's subject id.

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
    subject_ids = None if subject is None else torch.tensor([int(subject)], device=device)
    out = generate(
        model,
        codes.long().to(device),
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        subject=subject_ids,
        condition=condition,
        seed=seed,
        generator=generator,
        use_cache=use_cache,
        stride=stride,
    )
    decoded = tokenizer.decode(out.cpu())
    signal = decoded.detach().numpy() if isinstance(decoded, Tensor) else np.asarray(decoded)
    return GenerationResult(
        codes=out[0].cpu(),
        signal=signal[0],
        n_prompt=codes.shape[-1],
        n_clipped=int(getattr(encoded, "n_clipped", 0)),
    )
