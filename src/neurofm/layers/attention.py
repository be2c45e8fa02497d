"""Multi-head attention on ``F.scaled_dot_product_attention`` with a key/value cache
(:mod:`neurofm.layers.kv_cache`).

Self-attention (optionally causal, optionally with rotary positions) and cross-attention to a
context sequence share one module. ``KVCache`` holds the keys and values of the tokens seen so
far, so that a decoding step only computes the new tokens; its ``offset`` is the position of the
next token, which also offsets the rotary angles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers.kv_cache import KVCache, SlidingKVCache
from neurofm.layers.rope import RotaryEmbedding

__all__ = ["KVCache", "MultiHeadAttention", "SlidingKVCache", "causal_mask"]


def causal_mask(
    n_queries: int, n_keys: int, device: torch.device, window: int | None = None
) -> Tensor:
    """Boolean mask (n_queries, n_keys), True where attending is allowed.

    The queries are the last ``n_queries`` of the ``n_keys`` positions (bottom-right aligned), as
    in a cached decoding step. With ``window``, a query also sees only the last ``window``
    positions up to its own (sliding-window attention).
    """
    shift = n_keys - n_queries
    q = torch.arange(n_queries, device=device).unsqueeze(1)
    k = torch.arange(n_keys, device=device).unsqueeze(0)
    allowed = k <= q + shift
    if window is not None:
        allowed &= k > q + shift - window
    return allowed


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
    n_kv_heads : int or None
        Key/value heads (grouped-query attention: each serves ``n_heads / n_kv_heads`` query
        heads; 1 is multi-query attention); must divide ``n_heads``. Default ``n_heads``. Fewer
        key/value heads shrink the cache and what a decoding step reads by that factor.
    window : int or None
        Sliding-window self-attention: with ``causal``, each query sees only the last
        ``window`` positions up to its own (None: all of them). A cached layer then takes a
        :class:`~neurofm.layers.kv_cache.SlidingKVCache` of the same window, whose memory
        and step cost stay bounded however long the stream.
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
        n_kv_heads: int | None = None,
        window: int | None = None,
    ) -> None:
        super().__init__()
        if n_heads <= 0 or d_model % n_heads:
            raise ValueError(f"MultiHeadAttention: n_heads={n_heads} must divide d_model={d_model}")
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if n_kv_heads <= 0 or n_heads % n_kv_heads:
            raise ValueError(
                f"MultiHeadAttention: n_kv_heads={n_kv_heads} must divide n_heads={n_heads}"
            )
        if window is not None and window <= 0:
            raise ValueError(f"MultiHeadAttention: window must be positive, got {window}")
        if window is not None and d_context is not None:
            raise ValueError(
                "MultiHeadAttention: a window is for self-attention, not with a context"
            )
        self.window = window
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        d_context = d_model if d_context is None else d_context
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.kv_proj = nn.Linear(d_context, 2 * n_kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_dropout = nn.Dropout(dropout)
        self.rotary = RotaryEmbedding(self.head_dim, base=rope_base) if rotary else None

    def _heads(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        n = x.shape[-1] // self.head_dim
        return x.view(b, t, n, self.head_dim).transpose(1, 2)  # (B, H or H_kv, T, Dh)

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
        cache : KVCache or SlidingKVCache, optional
            Self-attention cache: ``x`` holds the tokens at positions ``cache.offset`` onward; the
            cache is updated in place (a :class:`SlidingKVCache` of the layer's ``window`` when it
            has one).

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
        if self.window is not None and not causal:
            raise ValueError(
                f"MultiHeadAttention: window={self.window} is sliding-window causal attention: "
                "call it with causal=True"
            )
        windowed = getattr(cache, "window", None)
        if cache is not None and windowed != self.window:
            raise ValueError(
                f"MultiHeadAttention: a layer with window={self.window} needs "
                + ("a KVCache" if self.window is None else f"SlidingKVCache({self.window})")
                + f", got {cache!r}"
            )
        q = self._heads(self.q_proj(x))
        k, v = self.kv_proj(x if context is None else context).chunk(2, dim=-1)
        k, v = self._heads(k), self._heads(v)
        offset = 0 if cache is None else cache.offset
        if self.rotary is not None and context is None:
            q, k = self.rotary(q, k, offset=offset)
        n_q = q.shape[-2]
        if cache is not None:
            step = n_q == 1 and attn_mask is None and not (self.training and self.dropout > 0)
            past = None
            if windowed is not None and cache.held and not step:  # kept keys before these
                past = (cache.keys.to(q.dtype), cache.values.to(q.dtype))
            cache.append(k, v)
            if step:
                # a decoding step sees every cached position: attend over the segments in place
                out = cache.attend(q).transpose(1, 2).reshape(x.shape[0], 1, -1)
                return self.out_dropout(self.out_proj(out))
            if windowed is None:
                k, v = cache.keys.to(q.dtype), cache.values.to(q.dtype)
            elif past is not None:
                k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        n_k = k.shape[-2]
        is_causal = False
        mask = attn_mask
        band = self.window if self.window is not None and self.window < n_k else None
        if causal and (n_q > 1 or band is not None):
            if n_q == n_k and mask is None and band is None:
                is_causal = True  # the kernel's own (top-left aligned) mask is right here
            else:
                tri = causal_mask(n_q, n_k, x.device, window=band)
                mask = tri if mask is None else mask & tri
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            enable_gqa=self.n_kv_heads != self.n_heads,
        )  # (B, H, T, Dh)
        out = out.transpose(1, 2).reshape(x.shape[0], n_q, -1)
        return self.out_dropout(self.out_proj(out))
