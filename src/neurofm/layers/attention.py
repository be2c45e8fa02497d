"""Multi-head attention on ``F.scaled_dot_product_attention`` with a key/value cache.

Self-attention (optionally causal, optionally with rotary positions) and cross-attention to a
context sequence share one module. ``KVCache`` holds the keys and values of the tokens seen so
far, so that a decoding step only computes the new tokens; its ``offset`` is the position of the
next token, which also offsets the rotary angles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers.rope import RotaryEmbedding


class KVCache:
    """Keys and values of one attention layer, shape (B, H, T_seen, Dh).

    Parameters
    ----------
    max_len : int or None
        With a number, storage for ``max_len`` positions is allocated on the first update and new
        entries are written in place (no copy of the past per step). With None, new entries are
        concatenated to the old ones.
    """

    def __init__(self, max_len: int | None = None) -> None:
        if max_len is not None and max_len <= 0:
            raise ValueError(f"KVCache: max_len must be positive, got {max_len}")
        self.max_len = max_len
        self.keys: Tensor | None = None
        self.values: Tensor | None = None
        self.offset = 0

    def update(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``keys``/``values`` (B, H, T_new, Dh); return all keys and values so far."""
        n_new = keys.shape[-2]
        if self.keys is not None and keys.shape[:2] != self.keys.shape[:2]:
            raise ValueError(
                f"KVCache: batch/head shape changed from {tuple(self.keys.shape[:2])} "
                f"to {tuple(keys.shape[:2])}"
            )
        if self.max_len is None:
            if self.keys is None:
                self.keys, self.values = keys, values
            else:
                self.keys = torch.cat((self.keys, keys), dim=-2)
                self.values = torch.cat((self.values, values), dim=-2)
            self.offset += n_new
            return self.keys, self.values
        end = self.offset + n_new
        if end > self.max_len:
            raise ValueError(
                f"KVCache: {end} positions exceed the cache length max_len={self.max_len}"
            )
        if self.keys is None:
            shape = (*keys.shape[:2], self.max_len, keys.shape[-1])
            self.keys = keys.new_empty(shape)
            self.values = values.new_empty((*shape[:3], values.shape[-1]))
        self.keys[:, :, self.offset : end] = keys
        self.values[:, :, self.offset : end] = values
        self.offset = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def __repr__(self) -> str:
        return f"KVCache(offset={self.offset}, max_len={self.max_len})"


def causal_mask(n_queries: int, n_keys: int, device: torch.device) -> Tensor:
    """Boolean mask (n_queries, n_keys), True where attending is allowed.

    The queries are the last ``n_queries`` of the ``n_keys`` positions (bottom-right aligned), as
    in a cached decoding step.
    """
    shift = n_keys - n_queries
    q = torch.arange(n_queries, device=device).unsqueeze(1)
    k = torch.arange(n_keys, device=device).unsqueeze(0)
    return k <= q + shift


class MultiHeadAttention(nn.Module):
    """Multi-head (self- or cross-) attention.

    Parameters
    ----------
    d_model : int
        Feature size of the queries and of the output.
    n_heads : int
        Number of heads; must divide ``d_model``.
    d_context : int or None
        Feature size of the context for cross-attention (default ``d_model``).
    dropout : float
        Dropout on the attention weights (training only) and on the output.
    bias : bool
        Biases in the projections.
    rotary : bool
        Rotate queries and keys with RoPE (self-attention only).
    rope_base : float
        RoPE wavelength base.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        d_context: int | None = None,
        dropout: float = 0.0,
        bias: bool = False,
        rotary: bool = False,
        rope_base: float = 10000.0,
    ) -> None:
        super().__init__()
        if n_heads <= 0 or d_model % n_heads:
            raise ValueError(f"MultiHeadAttention: n_heads={n_heads} must divide d_model={d_model}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        d_context = d_model if d_context is None else d_context
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.kv_proj = nn.Linear(d_context, 2 * d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_dropout = nn.Dropout(dropout)
        self.rotary = RotaryEmbedding(self.head_dim, base=rope_base) if rotary else None

    def _heads(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)

    def forward(
        self,
        x: Tensor,
        *,
        context: Tensor | None = None,
        causal: bool = False,
        attn_mask: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Attend from ``x`` (B, T, d_model) to itself, or to ``context`` (B, S, d_context).

        Parameters
        ----------
        x : Tensor, shape (B, T, d_model)
            Queries (and, without context, keys and values).
        context : Tensor, shape (B, S, d_context), optional
            Keys/values source for cross-attention (no rotary, no causal mask, no cache).
        causal : bool
            Each query attends only to keys at its own position or before.
        attn_mask : Tensor, optional
            Boolean, broadcastable to (B, H, T, T_keys), True where attending is allowed; combined
            with the causal mask.
        cache : KVCache, optional
            Self-attention cache: ``x`` holds the tokens at positions ``cache.offset`` onward; the
            cache is updated in place.

        Returns
        -------
        Tensor, shape (B, T, d_model)
        """
        if context is not None and cache is not None:
            raise ValueError(
                "MultiHeadAttention: a cache is for self-attention, not with a context"
            )
        if context is not None and causal:
            raise ValueError("MultiHeadAttention: cross-attention to a context cannot be causal")
        q = self._heads(self.q_proj(x))
        k, v = self.kv_proj(x if context is None else context).chunk(2, dim=-1)
        k, v = self._heads(k), self._heads(v)
        offset = 0 if cache is None else cache.offset
        if self.rotary is not None and context is None:
            q, k = self.rotary(q, k, offset=offset)
        if cache is not None:
            k, v = cache.update(k, v)
        n_q, n_k = q.shape[-2], k.shape[-2]
        is_causal = False
        mask = attn_mask
        if causal and n_q > 1:
            if offset == 0 and mask is None:
                is_causal = True  # the kernel's own (top-left aligned) mask is right here
            else:
                tri = causal_mask(n_q, n_k, x.device)
                mask = tri if mask is None else mask & tri
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, H, T, Dh)
        out = out.transpose(1, 2).reshape(x.shape[0], n_q, -1)
        return self.out_dropout(self.out_proj(out))
