"""Key/value caches of causal self-attention for incremental decoding.

:class:`KVCache` keeps every position seen (a growing cache); :class:`SlidingKVCache` keeps the
last ``window`` positions in a ring, for sliding-window attention.

A streaming decoder over an open-ended recording cannot keep every position: its memory and the
cost of a step would grow without end. With attention restricted to the last ``window``
positions (each query at position ``i`` sees keys ``i - window + 1 .. i``,
``MultiHeadAttention(window=...)``), the cache only ever needs those: :class:`SlidingKVCache`
keeps them in a ring of ``window`` slots (position ``p`` in slot ``p % window``). Keys are stored
after their rotary rotation, which encodes their absolute position, and softmax attention does not
depend on the order of its keys, so a decoding step attends over the ring as it lies, in one
``F.scaled_dot_product_attention`` call over two contiguous buffers, whatever the step number. A
step then costs the same at position 300 or 3,000,000.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_dtype(who: str, dtype: torch.dtype | None) -> None:
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"{who}: dtype must be a floating-point dtype, got {dtype}")


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
        _check_dtype("KVCache", dtype)
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
        if h % heads:
            raise ValueError(
                f"KVCache.attend: {h} query heads cannot share {heads} key/value heads"
            )
        if h != heads or torch.is_grad_enabled():
            return self._attend_grouped(q, scale, stored)
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

    def _attend_grouped(self, q: Tensor, scale: float, stored: list) -> Tensor:
        """With autograd, or grouped-query attention: the ``H / H_kv`` query heads of a key/value
        head (one without grouping) are the columns of one batched matrix product over that
        head's keys and values, in ``q``'s dtype, out of place."""
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


class SlidingKVCache:
    """Keys and values (B, H, n, Dh) of the last ``window`` positions seen, in a ring.

    Parameters
    ----------
    window : int
        Positions kept (the attention window of the layer it serves).
    dtype : torch.dtype, optional
        Store keys and values in this dtype (default: as given). ``torch.bfloat16`` halves the
        bytes a decoding step reads; the step then attends in bfloat16 (the CPU and CUDA kernels
        accumulate in float32) and returns the query's dtype.

    ``offset`` is the position of the next token (it grows without limit); :attr:`keys` and
    :attr:`values` return copies of the kept positions in position order.
    """

    def __init__(self, window: int, *, dtype: torch.dtype | None = None) -> None:
        if window <= 0:
            raise ValueError(f"SlidingKVCache: window must be positive, got {window}")
        _check_dtype("SlidingKVCache", dtype)
        self.window = window
        self.dtype = dtype
        self.offset = 0
        self._k: Tensor | None = None  # (B, H, window, Dh)
        self._v: Tensor | None = None

    @property
    def held(self) -> int:
        """Number of positions kept: ``min(offset, window)``."""
        return min(self.offset, self.window)

    @property
    def start(self) -> int:
        """Position of the oldest kept key."""
        return self.offset - self.held

    def append(self, keys: Tensor, values: Tensor) -> None:
        """Store ``keys``/``values`` (B, H, T_new, Dh) after the positions seen so far; of more
        than ``window`` new positions only the last ``window`` are kept."""
        if keys.shape != values.shape:
            raise ValueError(
                f"SlidingKVCache: keys {tuple(keys.shape)} and values {tuple(values.shape)} differ"
            )
        if self.dtype is not None:
            keys, values = keys.to(self.dtype), values.to(self.dtype)
        b, h, n_new, d = keys.shape
        if self._k is None:
            # touched whole now (zeros), with the prompt, not page by page during the steps
            self._k = keys.new_zeros((b, h, self.window, d))
            self._v = values.new_zeros((b, h, self.window, d))
        elif (b, h, d) != (self._k.shape[0], self._k.shape[1], self._k.shape[3]):
            raise ValueError(
                f"SlidingKVCache: batch/head/size shape changed from "
                f"{(self._k.shape[0], self._k.shape[1], self._k.shape[3])} to {(b, h, d)}"
            )
        if torch.is_grad_enabled() and (keys.requires_grad or values.requires_grad):
            # out of place: earlier steps' graphs still hold the ring they read
            slots = self._slots(n_new, keys.device)
            kept = slots.numel()
            self._k = self._k.index_copy(2, slots, keys[:, :, n_new - kept :])
            self._v = self._v.index_copy(2, slots, values[:, :, n_new - kept :])
        elif n_new == 1:
            slot = self.offset % self.window
            self._k[:, :, slot] = keys[:, :, 0]
            self._v[:, :, slot] = values[:, :, 0]
        else:
            slots = self._slots(n_new, keys.device)
            kept = slots.numel()
            self._k.index_copy_(2, slots, keys[:, :, n_new - kept :])
            self._v.index_copy_(2, slots, values[:, :, n_new - kept :])
        self.offset += n_new

    def _slots(self, n_new: int, device: torch.device) -> Tensor:
        """Ring slots of the last ``min(n_new, window)`` of ``n_new`` new positions."""
        kept = min(n_new, self.window)
        first = self.offset + n_new - kept
        return torch.arange(first, first + kept, device=device) % self.window

    def _ordered(self, ring: Tensor | None) -> Tensor | None:
        if ring is None or not self.held:
            return None
        if self.offset <= self.window:  # a copy: later steps overwrite the ring
            return ring[:, :, : self.offset].clone()
        split = self.offset % self.window  # slot of the oldest kept position
        return torch.cat((ring[:, :, split:], ring[:, :, :split]), dim=2)

    @property
    def keys(self) -> Tensor | None:
        """The kept keys (B, H, held, Dh) in position order (from :attr:`start`)."""
        return self._ordered(self._k)

    @property
    def values(self) -> Tensor | None:
        """The kept values (B, H, held, Dh) in position order."""
        return self._ordered(self._v)

    def segments(self) -> list[tuple[Tensor, Tensor]]:
        """The kept (keys, values) as one segment in position order (empty before any)."""
        return [] if not self.held else [(self.keys, self.values)]

    def attend(self, q: Tensor, scale: float | None = None) -> Tensor:
        """``softmax(q K^T * scale) V`` of one query per sequence, ``q`` (B, H, 1, Dh), over the
        kept positions (the last ``window``, the query's own included once appended); with
        fewer kept key/value heads ``H_kv``, query head ``i`` reads head ``i // (H / H_kv)``.
        Returns (B, H, 1, Dh) in ``q``'s dtype."""
        if q.shape[-2] != 1 or not self.held:
            raise ValueError(
                f"SlidingKVCache.attend: needs one query per sequence and a filled cache, got "
                f"{q.shape[-2]} queries and {self.held} positions"
            )
        n = self.held
        k = self._k if n == self.window else self._k[:, :, :n]
        v = self._v if n == self.window else self._v[:, :, :n]
        b, h, _, d = q.shape
        heads = k.shape[1]
        if h % heads:
            raise ValueError(
                f"SlidingKVCache.attend: {h} query heads cannot share {heads} key/value heads"
            )
        # grouped-query attention: a key/value head's query heads are its queries, one call
        grouped = q.to(k.dtype).reshape(b, heads, h // heads, d)
        out = F.scaled_dot_product_attention(grouped, k, v, scale=scale)
        return out.reshape(b, h, 1, d).to(q.dtype)

    def __repr__(self) -> str:
        dtype = "" if self.dtype is None else f", dtype={self.dtype}"
        return f"SlidingKVCache(window={self.window}, offset={self.offset}{dtype})"
