"""The autoregressive sampling loop shared by every model over codes.

It lives beside the models so that a model's own ``generate`` method can use it (imports only
go downstream); the public entry point is :func:`neurofm.generation.generate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


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
) -> Tensor:
    """Draw one id per row of ``logits`` (..., V); ``temperature=0`` takes the argmax."""
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    probs = (filter_logits(logits.float() / temperature, top_k=top_k, top_p=top_p)).softmax(-1)
    flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
    return flat.view(probs.shape[:-1])


def _check(
    prompt: Tensor, max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None
) -> None:
    if prompt.dtype.is_floating_point or prompt.dim() not in (2, 3):
        raise ValueError(
            f"generate: prompt must be integer codes (B, T) or (B, C, T), got "
            f"{tuple(prompt.shape)} {prompt.dtype}"
        )
    if prompt.shape[-1] < 1:
        raise ValueError("generate: the prompt must hold at least one time step")
    if max_new_tokens < 1:
        raise ValueError(f"generate: max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"generate: temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"generate: top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"generate: top_p must be in (0, 1], got {top_p}")


def check_condition(condition: Tensor | None, n_prompt: int, max_new_tokens: int) -> int:
    """The number of model inputs ``n_prompt + max_new_tokens - 1``; raise when ``condition``
    (..., T) does not cover them."""
    n_inputs = n_prompt + max_new_tokens - 1
    if condition is not None and condition.shape[-1] < n_inputs:
        raise ValueError(
            f"generate: condition covers {condition.shape[-1]} time steps, the inputs "
            f"need {n_inputs} (prompt + max_new_tokens - 1)"
        )
    return n_inputs


@torch.no_grad()
def autoregress(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    subject: Tensor | None = None,
    condition: Tensor | None = None,
    channel_ids: Tensor | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    keep_logits: bool = False,
) -> Generated:
    """Extend ``prompt`` by ``max_new_tokens`` codes drawn from ``model``.

    The model is called as ``model(x, *, subject, condition, channel_ids, past, use_cache)``
    (keywords passed only when given) and must return logits (..., T, V) where time t predicts
    t+1. With ``use_cache`` the prompt is run once with ``use_cache=True``; when the model
    returns a cache (``output.past``) each later step feeds only the newest code, otherwise (and
    with ``use_cache=False``) every step recomputes the whole sequence. The model is put in eval
    mode for the loop and its mode restored afterwards.

    Parameters
    ----------
    model : nn.Module
    prompt : LongTensor, shape (B, T0) or (B, C, T0)
    max_new_tokens : int
    temperature : float
        Softmax temperature; 0 decodes greedily.
    top_k, top_p : optional
        Sampling filters (see :func:`filter_logits`).
    subject : LongTensor (B,), optional
    condition : LongTensor (B, T) or (B, n_cond_tokens, T), optional
        Per-time condition covering at least ``T0 + max_new_tokens - 1`` steps (the inputs).
    channel_ids : LongTensor (B, C) or (C,), optional
    generator : torch.Generator, optional
        Source of randomness, for reproducible samples.
    use_cache : bool
        Use the model's cache when it has one.
    keep_logits : bool
        Also return the logits of every step.
    """
    _check(prompt, max_new_tokens, temperature, top_k, top_p)
    n_inputs = check_condition(condition, prompt.shape[-1], max_new_tokens)
    max_len = getattr(model, "max_seq_len", None)
    if max_len is not None and n_inputs > max_len:
        raise ValueError(
            f"generate: prompt ({prompt.shape[-1]}) + max_new_tokens "
            f"({max_new_tokens}) - 1 = {n_inputs} exceeds the model's "
            f"max_seq_len={max_len}"
        )

    def context(start: int, stop: int) -> dict:
        kwargs = {
            "subject": subject,
            "channel_ids": channel_ids,
            "condition": None if condition is None else condition[..., start:stop],
        }
        return {k: v for k, v in kwargs.items() if v is not None}

    was_training = model.training
    model.eval()
    try:
        codes, step_logits, past = prompt, [], None
        for step in range(max_new_tokens):
            t = codes.shape[-1]
            if past is not None:  # feed the newest code only
                out = model(codes[..., -1:], past=past, use_cache=True, **context(t - 1, t))
            elif use_cache and not step:  # the prompt, asking for a cache
                out = model(codes, past=None, use_cache=True, **context(0, t))
            else:  # recompute the whole sequence
                out = model(codes, **context(0, t))
            if past is not None or (use_cache and not step):
                past = out.past
            logits = out.logits[..., -1, :].float()  # (B, V) or (B, C, V)
            if keep_logits:
                step_logits.append(logits)
            nxt = sample_logits(
                logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            codes = torch.cat((codes, nxt.unsqueeze(-1).to(codes.dtype)), dim=-1)
    finally:
        model.train(was_training)
    return Generated(codes, torch.stack(step_logits, dim=-2) if keep_logits else None)
