"""Inputs of the controls of :func:`~neurofm.evaluation.text_scores.score_text`.

``noise``: random signal with each segment's per-channel mean and standard deviation;
``shuffled``: each segment's signal replaced by another segment's, never one with the same text
(with held-out stories, several subjects hear the same passage: their segments share the text,
and swapping them would hand the decoder the right words); ``no_meg`` needs no input.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np


def shuffled_partners(keys: Sequence[Hashable], *, seed: int = 0) -> np.ndarray:
    """A permutation ``p`` with ``keys[p[i]] != keys[i]`` for every i (the shuffled control
    gives segment i the signal of segment ``p[i]``).

    Parameters
    ----------
    keys : sequence
        What must differ between a segment and its partner, e.g. the text of each segment.
    seed : int
        Seed of the permutation.

    Returns
    -------
    ndarray of int, shape (M,)

    Raises
    ------
    ValueError
        When no such permutation exists (one key held by more than half the segments).
    """
    keys = list(keys)
    n = len(keys)
    counts: dict[Hashable, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    if n < 2 or max(counts.values()) * 2 > n:
        raise ValueError(
            f"shuffled_partners: {n} segments, the most common key held by "
            f"{max(counts.values(), default=0)}; no segment can get a partner with another key"
        )
    rng = np.random.default_rng(seed)
    # sort by key so that equal keys are contiguous, then pair each with the segment half the
    # list away: with no key above half the segments the pairs always differ; a random order
    # within keys and a random rotation of the key blocks keep it random
    blocks = list(counts)
    rng.shuffle(blocks)
    rank = {key: i for i, key in enumerate(blocks)}
    jitter = rng.permutation(n)
    order = sorted(range(n), key=lambda i: (rank[keys[i]], jitter[i]))
    partners = np.empty(n, dtype=np.int64)
    half = n // 2
    for position, index in enumerate(order):
        partners[index] = order[(position + half) % n]
    return partners


def noise_like(x: Any, *, seed: int = 0) -> Any:
    """Gaussian noise shaped like ``x`` (..., C, T) with each (..., C) row's mean and standard
    deviation over time; a torch tensor for a tensor (same device and dtype), else numpy."""
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and isinstance(x, torch.Tensor):
        generator = torch.Generator().manual_seed(seed)
        draw = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x)
        return x.mean(-1, keepdim=True) + x.std(-1, keepdim=True) * draw
    x = np.asarray(x)
    draw = np.random.default_rng(seed).standard_normal(x.shape)
    return (x.mean(-1, keepdims=True) + x.std(-1, keepdims=True) * draw).astype(x.dtype)
