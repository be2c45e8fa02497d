"""A key/value cache of the last ``window`` positions, for sliding-window attention.

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
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"SlidingKVCache: dtype must be a floating-point dtype, got {dtype}")
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
