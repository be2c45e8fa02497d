"""Input embeddings for models over channel-wise codes.

``ChannelTokenEmbedding`` sums, for every (channel, time) cell, the embedding of the quantized
code, of the channel id and of the context: the recording's subject id and, optionally, per-time
condition tokens and a global conditioning vector. ``ContextEmbedding`` is the context part on
its own (B, T, D), for models that inject it elsewhere than at the input. Positions in time
are left to the model (RoPE or a learned table), so the same modules serve cached decoding.

With ``value_embedding`` the codes are also read as ordered amplitudes: the code ``k`` of ``V``
is mapped to ``v = 2 k / (V - 1) - 1`` in [-1, 1] (the companded amplitude of a uniform
quantizer such as mu-law) and a learned linear map of ``v`` is added to its embedding, so that
neighbouring codes start out with neighbouring embeddings.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def code_values(codes: Tensor, vocab_size: int) -> Tensor:
    """Codes ``0 .. V-1`` as evenly spaced float amplitudes ``2 k / (V - 1) - 1`` in [-1, 1]."""
    return codes.float() * (2.0 / max(vocab_size - 1, 1)) - 1.0


def mu_law_expand(y: Tensor, mu: float) -> Tensor:
    """Unit-scale amplitudes of companded values ``y`` in [-1, 1]: ``sign(y) ((1 + mu)^|y| - 1) / mu``
    (the inverse of mu-law companding)."""
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def check_ids(who: str, what: str, ids: Tensor, size: int) -> None:
    """Raise unless ``ids`` are integers in ``[0, size)``, naming ``what`` and the range seen."""
    if ids.dtype.is_floating_point:
        raise ValueError(f"{who}: {what} must be integer ids, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
        raise ValueError(
            f"{who}: {what} out of range [0, {size}): min {int(ids.min())}, max {int(ids.max())}"
        )


class ContextEmbedding(nn.Module):
    """Sum of the context embeddings of a window, shape (B, T, D) or (B, 1, D).

    Parameters
    ----------
    d_model : int
        Embedding size ``D``.
    n_subjects : int or None
        Number of subject ids; None (or 0) disables the subject embedding.
    n_conditions : int or None
        Number of condition labels per condition stream; None (or 0) disables conditioning.
    n_cond_tokens : int
        Number of condition streams: a condition of shape (B, n_cond_tokens, T) is embedded with
        one table per stream and summed (a (B, T) condition is one stream).
    d_global : int or None
        Size of a global conditioning vector (B, d_global), projected to ``D``; None (or 0)
        disables it.
    who : str or None
        Name used in error messages (default: the class name).
    """

    def __init__(
        self,
        d_model: int,
        *,
        n_subjects: int | None = None,
        n_conditions: int | None = None,
        n_cond_tokens: int = 1,
        d_global: int | None = None,
        who: str | None = None,
    ) -> None:
        super().__init__()
        self.who = who or type(self).__name__
        if d_model <= 0 or n_cond_tokens <= 0:
            raise ValueError(
                f"{self.who}: d_model={d_model} and n_cond_tokens={n_cond_tokens} must be positive"
            )
        self.d_model = d_model
        self.n_conditions = n_conditions or 0
        self.n_cond_tokens = n_cond_tokens
        self.subject = nn.Embedding(n_subjects, d_model) if n_subjects else None
        self.condition = (
            nn.Embedding(n_conditions * n_cond_tokens, d_model) if n_conditions else None
        )
        self.global_proj = nn.Linear(d_global, d_model) if d_global else None

    def forward(
        self,
        b: int,
        t: int,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        global_embedding: Tensor | None = None,
    ) -> Tensor | None:
        """Sum of the given context embeddings, (B, T, D) or (B, 1, D); None when none is given.

        Parameters
        ----------
        b, t : int
            Batch size and number of time steps of the input.
        subject : LongTensor, shape (B,), optional
            Subject ids; an error when the subject embedding is disabled.
        condition : LongTensor, shape (B, T) or (B, n_cond_tokens, T), optional
            Per-time condition labels, aligned with the time axis of the input.
        global_embedding : Tensor, shape (B, d_global), optional
            Global conditioning vector.
        """
        parts = []
        if subject is not None:
            if self.subject is None:
                raise ValueError(f"{self.who}: subject given but n_subjects is 0")
            check_ids(self.who, "subject", subject, self.subject.num_embeddings)
            parts.append(self.subject(subject.reshape(b))[:, None])  # (B, 1, D)
        if condition is not None:
            parts.append(self._condition(condition, b, t))
        if global_embedding is not None:
            if self.global_proj is None:
                raise ValueError(f"{self.who}: global_embedding given but d_global is 0")
            if tuple(global_embedding.shape) != (b, self.global_proj.in_features):
                raise ValueError(
                    f"{self.who}: global_embedding must be ({b}, {self.global_proj.in_features}),"
                    f" got {tuple(global_embedding.shape)}"
                )
            parts.append(self.global_proj(global_embedding)[:, None])  # (B, 1, D)
        if not parts:
            return None
        out = parts[0]
        for part in parts[1:]:
            out = out + part
        return out

    def _condition(self, condition: Tensor, b: int, t: int) -> Tensor:
        """Embed (B, T) or (B, n_cond_tokens, T) labels into (B, T, D)."""
        if self.condition is None:
            raise ValueError(f"{self.who}: condition given but n_conditions is 0")
        given = tuple(condition.shape)
        if condition.dim() == 2:
            condition = condition.unsqueeze(1)
        if tuple(condition.shape) != (b, self.n_cond_tokens, t):
            raise ValueError(
                f"{self.who}: condition must be ({b}, {self.n_cond_tokens}, {t})"
                + (f" or ({b}, {t})" if self.n_cond_tokens == 1 else "")
                + f", got {given}"
            )
        check_ids(self.who, "condition", condition, self.n_conditions)
        stream = torch.arange(self.n_cond_tokens, device=condition.device)[None, :, None]
        return self.condition(condition + stream * self.n_conditions).sum(dim=1)


class ChannelTokenEmbedding(ContextEmbedding):
    """Sum of token, channel, subject, condition and global embeddings, shape (B, C, T, D).

    A :class:`ContextEmbedding` (same tables, same state-dict names) plus the code and channel
    tables; the context is broadcast over channels.

    Parameters
    ----------
    vocab_size : int
        Number of codes ``V``.
    d_model : int
        Embedding size ``D``.
    n_chans : int or None
        Size of the channel-id vocabulary; None (or 0) disables the channel embedding.
    n_subjects, n_conditions, n_cond_tokens, d_global :
        The context tables, as in :class:`ContextEmbedding`.
    dropout : float
        Dropout on the summed embedding.
    value_embedding : bool
        Add a learned linear map of each code's amplitude ``2 k / (V - 1) - 1`` (see the module
        doc); codes only, precomputed token embeddings are used as they are.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        *,
        n_chans: int | None = None,
        n_subjects: int | None = None,
        n_conditions: int | None = None,
        n_cond_tokens: int = 1,
        d_global: int | None = None,
        dropout: float = 0.0,
        value_embedding: bool = False,
    ) -> None:
        super().__init__(
            d_model,
            n_subjects=n_subjects,
            n_conditions=n_conditions,
            n_cond_tokens=n_cond_tokens,
            d_global=d_global,
        )
        if vocab_size <= 0:
            raise ValueError(f"{self.who}: vocab_size must be positive, got {vocab_size}")
        self.token = nn.Embedding(vocab_size, d_model)
        self.channel = nn.Embedding(n_chans, d_model) if n_chans else None
        self.value = nn.Linear(1, d_model) if value_embedding else None
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        tokens: Tensor,
        *,
        channel_ids: Tensor | None = None,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        global_embedding: Tensor | None = None,
    ) -> Tensor:
        """Embed codes and add the channel and context embeddings.

        Parameters
        ----------
        tokens : Tensor
            Codes (B, C, T) int64, or token embeddings (B, C, T, D) float used as they are.
        channel_ids : Tensor, shape (B, C) or (C,), optional
            Channel ids; default ``0 .. C-1`` when the channel embedding is enabled.
        subject, condition, global_embedding : Tensor, optional
            As in :meth:`ContextEmbedding.forward`.

        Returns
        -------
        Tensor, shape (B, C, T, D)
        """
        if tokens.dtype.is_floating_point:
            if tokens.dim() != 4 or tokens.shape[-1] != self.d_model:
                raise ValueError(
                    f"{self.who}: embeddings must be (B, C, T, {self.d_model}), "
                    f"got {tuple(tokens.shape)}"
                )
            h = tokens
        else:
            if tokens.dim() != 3:
                raise ValueError(f"{self.who}: codes must be (B, C, T), got {tuple(tokens.shape)}")
            check_ids(self.who, "codes", tokens, self.token.num_embeddings)
            h = self.token(tokens)
            if self.value is not None:
                h = h + self.value(code_values(tokens, self.token.num_embeddings).unsqueeze(-1))
        b, c, t, _ = h.shape
        if self.channel is not None:
            if channel_ids is None:
                channel_ids = torch.arange(c, device=h.device)
            check_ids(self.who, "channel_ids", channel_ids, self.channel.num_embeddings)
            if channel_ids.shape[-1] != c:
                raise ValueError(
                    f"{self.who}: channel_ids has {channel_ids.shape[-1]} entries for {c} channels"
                )
            ch = self.channel(channel_ids)  # (C, D) or (B, C, D)
            h = h + (ch.unsqueeze(-2) if ch.dim() == 3 else ch[None, :, None])
        elif channel_ids is not None:
            raise ValueError(f"{self.who}: channel_ids given but n_chans is 0 (no channel table)")
        context = super().forward(
            b, t, subject=subject, condition=condition, global_embedding=global_embedding
        )
        if context is not None:
            h = h + context[:, None]  # (B, 1, T or 1, D) over channels
        return self.dropout(h)
