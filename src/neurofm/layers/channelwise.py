"""Per-channel code input and readout for models that see all channels of a time step at once.

- :class:`ChannelCodeInput`: the codes of every channel of a time step, (B, C, T) int64, summed
  into one feature vector (B, D, T): ``sum_c E[id_c, x_c] / sqrt(C)``, a table per channel id,
  so that any subset of the ``n_chans`` channels (named by their ids) can be read;
- :class:`ChannelHead`: the reverse, a linear readout per channel id from shared features
  (B, D, T) to logits (B, C, T, V).

Both take the channel ids (B, C) or (C,) (default ``0 .. C-1``) and check them with
:func:`~neurofm.layers.embeddings.check_ids`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from neurofm.layers.embeddings import check_ids


def channel_ids_for(x: Tensor, channel_ids: Tensor | None, n_chans: int, where: str) -> Tensor:
    """Channel ids (B, C) for codes ``x`` (B, C, T): ``channel_ids`` broadcast, or ``0 .. C-1``.

    Raises
    ------
    ValueError
        When there are more channels than ``n_chans``, or ids outside ``[0, n_chans)``.
    """
    b, c = x.shape[:2]
    if channel_ids is None:
        if c > n_chans:
            raise ValueError(f"{where}: {c} channels but n_chans={n_chans}")
        return torch.arange(c, device=x.device).expand(b, c)
    ids = channel_ids.to(x.device).long().expand(b, c)
    check_ids(where, "channel_ids", ids, n_chans)
    return ids


class ChannelCodeInput(nn.Module):
    """Sum of per-channel code embeddings: codes (B, C, T) -> features (B, D, T).

    Parameters
    ----------
    n_chans : int
        Size of the channel-id vocabulary.
    vocab_size : int
        Codes per channel V.
    d_model : int
        Feature size D.
    """

    def __init__(self, n_chans: int, vocab_size: int, d_model: int) -> None:
        super().__init__()
        self.n_chans, self.vocab_size = n_chans, vocab_size
        self.table = nn.Embedding(n_chans * vocab_size, d_model)
        nn.init.normal_(self.table.weight, std=1.0)

    def forward(self, x: Tensor, ids: Tensor) -> Tensor:
        """Features (B, D, T) of codes ``x`` (B, C, T) of the channels ``ids`` (B, C)."""
        check_ids(type(self).__name__, "codes", x, self.vocab_size)
        rows = ids[..., None] * self.vocab_size + x  # (B, C, T)
        summed = self.table(rows).sum(dim=1) / math.sqrt(x.shape[1])  # (B, T, D)
        return summed.transpose(1, 2)


class ChannelHead(nn.Module):
    """A linear readout per channel id: features (B, D, T) -> logits (B, C, T, V).

    Parameters
    ----------
    n_chans : int
        Size of the channel-id vocabulary.
    d_model : int
        Feature size D.
    vocab_size : int
        Logits per channel-sample V.
    """

    def __init__(self, n_chans: int, d_model: int, vocab_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_chans, d_model, vocab_size) / math.sqrt(d_model))
        self.bias = nn.Parameter(torch.zeros(n_chans, vocab_size))

    def forward(self, h: Tensor, ids: Tensor) -> Tensor:
        """Logits (B, C, T, V) of the channels ``ids`` (B, C) from ``h`` (B, D, T)."""
        if bool((ids == ids[:1]).all()):  # the same channels in every window: gather once
            row = ids[0]
            weight, bias = self.weight.index_select(0, row), self.bias.index_select(0, row)
            return torch.einsum("bdt,cdv->bctv", h, weight) + bias[:, None]
        weight = self.weight[ids]  # (B, C, D, V)
        return torch.einsum("bdt,bcdv->bctv", h, weight) + self.bias[ids][:, :, None]
