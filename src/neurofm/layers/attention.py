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
    """Keys and values of one attention layer, shape (B, H, T_seen, Dh), kept in contiguous
    segments.

    An update of several positions (a prompt) is kept as one segment; single positions (decoding
    steps) are written in place into blocks of ``block_len`` positions, so that a step copies
    nothing of the past. Values are stored transposed, (B, H, Dh, n) per segment.
    :meth:`attend` runs a decoding query over the segments where they lie, each read by one
    contiguous batched matrix-vector product, ``K q`` and ``V^T p`` (on CPU, a strided slice of
    a longer buffer reads at about half the speed, and the vector-matrix form ``p V`` is about a
    third slower). The pages of the block after the open one are touched a slice per step, so no
    step pays the first touch of a whole block.

    Parameters
    ----------
    max_len : int or None
        Most positions the cache may hold (None: no limit).
    block_len : int
        Positions per block of single-position updates.
    dtype : torch.dtype, optional
        Store keys and values in this dtype (default: as given). ``torch.bfloat16`` halves the
        bytes a decoding step reads, the step's main cost on CPU; a step then computes the
        scores and the weighted values in bfloat16 with float32 softmax and output
        (:meth:`attend`), and :attr:`keys` / :attr:`values` come back in bfloat16.
    """

    def __init__(
        self,
        max_len: int | None = None,
        *,
        block_len: int = 64,
        dtype: torch.dtype | None = None,
    ) -> None:
        if max_len is not None and max_len <= 0:
            raise ValueError(f"KVCache: max_len must be positive, got {max_len}")
        if block_len <= 0:
            raise ValueError(f"KVCache: block_len must be positive, got {block_len}")
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"KVCache: dtype must be a floating-point dtype, got {dtype}")
        self.max_len = max_len
        self.block_len = block_len
        self.dtype = dtype
        self.offset = 0
        # segments: keys (B, H, n, Dh) and transposed values (B, H, Dh, n)
        self._sealed: list[tuple[Tensor, Tensor]] = []
        self._open: tuple[Tensor, Tensor] | None = None  # a block of block_len positions
        self._next: tuple[Tensor, Tensor] | None = None  # the block after it, being touched
        self._filled = 0  # positions of the open block in use
        self._scratch: Tensor | None = None  # scores of a decoding step, kept between steps

    def append(self, keys: Tensor, values: Tensor) -> None:
        """Store ``keys``/``values`` (B, H, T_new, Dh) after the positions seen so far."""
        if self.dtype is not None:
            keys, values = keys.to(self.dtype), values.to(self.dtype)
        n_new = keys.shape[-2]
        stored = self._segments()
        if stored and keys.shape[:2] != stored[0][0].shape[:2]:
            raise ValueError(
                f"KVCache: batch/head shape changed from {tuple(stored[0][0].shape[:2])} "
                f"to {tuple(keys.shape[:2])}"
            )
        end = self.offset + n_new
        if self.max_len is not None and end > self.max_len:
            raise ValueError(
                f"KVCache: {end} positions exceed the cache length max_len={self.max_len}"
            )
        if n_new == 1:
            self._write_step(keys, values)
        else:
            self._seal()
            self._sealed.append((keys.contiguous(), values.transpose(-1, -2).contiguous()))
        self.offset = end

    def update(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``keys``/``values`` (B, H, T_new, Dh); return all keys and values so far
        (one tensor each: a copy when the cache holds more than one segment)."""
        self.append(keys, values)
        return self.keys, self.values

    def segments(self) -> list[tuple[Tensor, Tensor]]:
        """The (keys, values) segments in position order, (B, H, n_i, Dh) each."""
        return [(k, v.transpose(-1, -2)) for k, v in self._segments()]

    @property
    def keys(self) -> Tensor | None:
        """All keys (B, H, T_seen, Dh), None before the first update."""
        return _joined([k for k, _ in self._segments()], -2)

    @property
    def values(self) -> Tensor | None:
        """All values (B, H, T_seen, Dh), None before the first update."""
        joined = _joined([v for _, v in self._segments()], -1)
        return None if joined is None else joined.transpose(-1, -2)

    def attend(self, q: Tensor, scale: float | None = None) -> Tensor:
        """``softmax(q K^T * scale) V`` over every cached position for one query per sequence,
        ``q`` (B, H, 1, Dh) (it sees them all: no mask); ``scale`` defaults to ``Dh ** -0.5``.
        With fewer cached key/value heads ``H_kv`` (grouped-query attention), query head ``i``
        reads key/value head ``i // (H / H_kv)``. Returns (B, H, 1, Dh)."""
        b, h, n_q, d = q.shape
        stored = self._segments()
        if not stored or n_q != 1:
            raise ValueError(
                f"KVCache.attend: needs one query per sequence and a filled cache, got "
                f"{n_q} queries and {self.offset} positions"
            )
        scale = d**-0.5 if scale is None else scale
        heads = stored[0][0].shape[1]
        if h != heads:
            if h % heads:
                raise ValueError(
                    f"KVCache.attend: {h} query heads cannot share {heads} key/value heads"
                )
            return self._attend_grouped(q, scale, stored)
        if torch.is_grad_enabled():
            return self._attend_autograd(q, scale, stored)
        if stored[0][0].dtype != q.dtype:
            return self._attend_stored_dtype(q, scale, stored)
        return self._attend_in_scratch(q, scale, stored)

    def _attend_stored_dtype(self, q: Tensor, scale: float, stored: list) -> Tensor:
        """A decoding step over keys and values stored in another (lower) precision: the
        products run in the stored dtype, the softmax and the output in ``q``'s dtype. The open
        block is read whole (its unused positions, zeros, get zero weight): the low-precision
        kernels copy a sliced block first."""
        b, h, _, d = q.shape
        rows, low = b * h, stored[0][0].dtype
        if self._open is not None and self._filled:
            stored = [*self._sealed, self._open]
        qt = (q * scale).to(low).reshape(rows, 1, d).transpose(1, 2)
        scores = [
            torch.bmm(k.reshape(rows, -1, d), qt).view(rows, -1).to(q.dtype) for k, _ in stored
        ]
        if self._open is not None and self._filled:
            scores[-1][:, self._filled :] = -torch.inf
        top = torch.stack([s.amax(dim=1) for s in scores], dim=1).amax(dim=1, keepdim=True)
        total = None
        for s in scores:
            s.sub_(top).exp_()
            part = s.sum(dim=1, keepdim=True)
            total = part if total is None else total.add_(part)
        out = None
        for (_, v), s in zip(stored, scores):
            p = s.div_(total).to(low).unsqueeze(-1)  # (BH, n, 1)
            vt = v.reshape(rows, d, -1)
            out = torch.bmm(vt, p) if out is None else out.baddbmm_(vt, p)
        return out.to(q.dtype).view(b, h, 1, d)

    def _attend_autograd(self, q: Tensor, scale: float, stored: list) -> Tensor:
        b, h, _, d = q.shape
        # the column-vector views (strides (Dh, 1, Dh)) keep the kernels on their fast path
        stored = [(k.to(q.dtype), v.to(q.dtype)) for k, v in stored]
        qt = (q * scale).reshape(b * h, 1, d).transpose(1, 2)
        scores = [torch.bmm(k.reshape(b * h, -1, d), qt) for k, _ in stored]  # (BH, n, 1)
        probs = torch.cat(scores, dim=1).transpose(1, 2).softmax(dim=-1)  # (BH, 1, T)
        out, start = None, 0
        for _, v in stored:
            n = v.shape[-1]
            p = probs[:, :, start : start + n].transpose(1, 2)
            part = torch.bmm(v.reshape(b * h, d, n), p)  # (BH, Dh, 1)
            out = part if out is None else out + part
            start += n
        return out.view(b, h, 1, d)

    def _attend_grouped(self, q: Tensor, scale: float, stored: list) -> Tensor:
        """Grouped-query attention: the ``H / H_kv`` query heads of a key/value head are the
        columns of one batched matrix product over that head's keys and values (computed in
        ``q``'s dtype)."""
        b, h, _, d = q.shape
        heads = stored[0][0].shape[1]
        g, rows = h // heads, b * heads
        stored = [(k.to(q.dtype), v.to(q.dtype)) for k, v in stored]
        qt = (q * scale).reshape(rows, g, d).transpose(1, 2)  # (B*H_kv, Dh, g)
        scores = [torch.bmm(k.reshape(rows, -1, d), qt) for k, _ in stored]  # (rows, n, g)
        probs = torch.cat(scores, dim=1).softmax(dim=1)
        out, start = None, 0
        for _, v in stored:
            n = v.shape[-1]
            part = torch.bmm(v.reshape(rows, d, n), probs[:, start : start + n])  # (rows, Dh, g)
            out = part if out is None else out + part
            start += n
        return out.transpose(1, 2).reshape(b, h, 1, d)

    def _attend_in_scratch(self, q: Tensor, scale: float, stored: list) -> Tensor:
        """The same without autograd, the scores of every segment written in place into one
        buffer kept between steps: a step allocates next to nothing (on CPU, fresh buffers cost
        their first touch, page by page, at every step)."""
        b, h, _, d = q.shape
        rows = b * h
        if self._scratch is None or self._scratch.numel() < rows * self.offset:
            capacity = self.max_len or 2 * self.offset
            self._scratch = q.new_zeros(rows * max(capacity, self.offset))
        qt = (q * scale).reshape(rows, 1, d).transpose(1, 2)
        scores, top, start = [], None, 0
        for k, _ in stored:
            n = k.shape[-2]
            s = self._scratch[rows * start : rows * (start + n)]
            torch.bmm(k.reshape(rows, n, d), qt, out=s.view(rows, n, 1))
            s = s.view(rows, n)
            high = s.amax(dim=1, keepdim=True)
            top = high if top is None else torch.maximum(top, high)
            scores.append(s)
            start += n
        total = None
        for s in scores:  # exp(s - max), normalised at the end
            s.sub_(top).exp_()
            part = s.sum(dim=1, keepdim=True)
            total = part if total is None else total.add_(part)
        out = None
        for (_, v), s in zip(stored, scores):
            n = s.shape[1]
            p = s.view(rows, 1, n).transpose(1, 2)  # (BH, n, 1), strides (n, 1, n)
            vt = v.reshape(rows, d, n)
            out = torch.bmm(vt, p) if out is None else out.baddbmm_(vt, p)
        return out.div_(total[:, :, None]).view(b, h, 1, d)

    def _segments(self) -> list[tuple[Tensor, Tensor]]:
        """Stored segments: keys (B, H, n, Dh), values transposed (B, H, Dh, n)."""
        if self._open is None or not self._filled:
            return list(self._sealed)
        k, v = self._open
        return [*self._sealed, (k[:, :, : self._filled], v[..., : self._filled])]

    def _write_step(self, keys: Tensor, values: Tensor) -> None:
        if self._open is None or self._filled == self.block_len:
            if self._open is not None:
                self._sealed.append(self._open)
            # the first block is touched whole now (with the prompt, not spread over steps)
            self._open = self._next or self._block(keys, values, touched=True)
            self._next = self._block(keys, values)
            self._filled = 0
        k, v = self._open
        k[:, :, self._filled] = keys[:, :, 0]
        v[..., self._filled] = values[:, :, 0]
        self._filled += 1
        for part in self._next:  # first touch of the next block, one slice per step
            flat = part.view(-1)
            size = -(-flat.numel() // self.block_len)
            flat[(self._filled - 1) * size : self._filled * size].zero_()

    def _block(self, keys: Tensor, values: Tensor, touched: bool = False) -> tuple[Tensor, Tensor]:
        b, h, _, d = keys.shape
        new = keys.new_zeros if touched else keys.new_empty
        return new((b, h, self.block_len, d)), new((b, h, values.shape[-1], self.block_len))

    def _seal(self) -> None:
        """Close the open block: its used part becomes a segment of its own."""
        if self._open is not None and self._filled:
            k, v = self._open
            n = self._filled
            self._sealed.append((k[:, :, :n].clone(), v[..., :n].clone()))
        self._open, self._filled = None, 0

    def __repr__(self) -> str:
        dtype = "" if self.dtype is None else f", dtype={self.dtype}"
        return f"KVCache(offset={self.offset}, max_len={self.max_len}{dtype})"


def _joined(parts: list[Tensor], dim: int) -> Tensor | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=dim)


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
        :class:`~neurofm.layers.sliding_cache.SlidingKVCache` of the same window, whose memory
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
