"""Input embeddings for models over channel-wise codes.

``ChannelTokenEmbedding`` sums, for every (channel, time) cell, the embedding of the quantized
code, of the channel id, of the recording's subject id and, optionally, of per-time condition
tokens and of a global conditioning vector. Positions in time are left to the model (RoPE or a
learned table), so the same module serves cached decoding.

With ``value_embedding`` the codes are also read as ordered amplitudes: the code ``k`` of ``V``
is mapped to ``v = 2 k / (V - 1) - 1`` in [-1, 1] (the companded amplitude of a uniform
quantizer such as mu-law) and a learned linear map of ``v`` is added to its embedding, so that
neighbouring codes start out with neighbouring embeddings.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def code_values(codes: Tensor, vocab_size: int) -> Tensor:
    """Codes ``0 .. V-1`` as evenly spaced float amplitudes ``2 k / (V - 1) - 1`` in [-1, 1]."""
    return codes.float() * (2.0 / max(vocab_size - 1, 1)) - 1.0


class ChannelTokenEmbedding(nn.Module):
    """Sum of token, channel, subject and condition embeddings, shape (B, C, T, D).

    Parameters
    ----------
    vocab_size : int
        Number of codes ``V``.
    d_model : int
        Embedding size ``D``.
    n_chans : int or None
        Size of the channel-id vocabulary; None (or 0) disables the channel embedding.
    n_subjects : int or None
        Number of subject ids; None (or 0) disables the subject embedding.
    n_conditions : int or None
        Number of condition labels per condition stream; None (or 0) disables conditioning.
    n_cond_tokens : int
        Number of condition streams: a condition of shape (B, n_cond_tokens, T) is embedded with
        one table per stream and summed (a (B, T) condition is one stream).
    d_global : int or None
        Size of a global conditioning vector (B, d_global), projected to ``D`` and added
        everywhere; None (or 0) disables it.
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
        super().__init__()
        if vocab_size <= 0 or d_model <= 0:
            raise ValueError(
                f"ChannelTokenEmbedding: vocab_size={vocab_size} and "
                f"d_model={d_model} must be positive"
            )
        if n_cond_tokens <= 0:
            raise ValueError(
                f"ChannelTokenEmbedding: n_cond_tokens must be positive, got {n_cond_tokens}"
            )
        self.d_model = d_model
        self.n_cond_tokens = n_cond_tokens
        self.n_conditions = n_conditions or 0
        self.token = nn.Embedding(vocab_size, d_model)
        self.channel = nn.Embedding(n_chans, d_model) if n_chans else None
        self.subject = nn.Embedding(n_subjects, d_model) if n_subjects else None
        self.condition = (
            nn.Embedding(n_conditions * n_cond_tokens, d_model) if n_conditions else None
        )
        self.global_proj = nn.Linear(d_global, d_model) if d_global else None
        self.value = nn.Linear(1, d_model) if value_embedding else None
        self.dropout = nn.Dropout(dropout)

    @staticmethod
    def _check_ids(ids: Tensor, size: int, what: str) -> None:
        if ids.dtype.is_floating_point:
            raise ValueError(f"ChannelTokenEmbedding: {what} must be integer ids, got {ids.dtype}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
            raise ValueError(
                f"ChannelTokenEmbedding: {what} out of range [0, {size}): "
                f"min {int(ids.min())}, max {int(ids.max())}"
            )

    def forward(
        self,
        tokens: Tensor,
        *,
        channel_ids: Tensor | None = None,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        global_embedding: Tensor | None = None,
    ) -> Tensor:
        """Embed codes and add the context embeddings.

        Parameters
        ----------
        tokens : Tensor
            Codes (B, C, T) int64, or token embeddings (B, C, T, D) float used as they are.
        channel_ids : Tensor, shape (B, C) or (C,), optional
            Channel ids; default ``0 .. C-1`` when the channel embedding is enabled.
        subject : Tensor, shape (B,), optional
            Subject ids; an error when the subject embedding is disabled.
        condition : Tensor, shape (B, T) or (B, n_cond_tokens, T), optional
            Per-time condition labels, aligned with the time axis of ``tokens``.
        global_embedding : Tensor, shape (B, d_global), optional
            Global conditioning vector.

        Returns
        -------
        Tensor, shape (B, C, T, D)
        """
        if tokens.dtype.is_floating_point:
            if tokens.dim() != 4 or tokens.shape[-1] != self.d_model:
                raise ValueError(
                    f"ChannelTokenEmbedding: embeddings must be (B, C, T, {self.d_model}), "
                    f"got {tuple(tokens.shape)}"
                )
            h = tokens
        else:
            if tokens.dim() != 3:
                raise ValueError(
                    f"ChannelTokenEmbedding: codes must be (B, C, T), got {tuple(tokens.shape)}"
                )
            self._check_ids(tokens, self.token.num_embeddings, "codes")
            h = self.token(tokens)
            if self.value is not None:
                h = h + self.value(code_values(tokens, self.token.num_embeddings).unsqueeze(-1))
        b, c, t, _ = h.shape
        if self.channel is not None:
            if channel_ids is None:
                channel_ids = torch.arange(c, device=h.device)
            self._check_ids(channel_ids, self.channel.num_embeddings, "channel_ids")
            if channel_ids.shape[-1] != c:
                raise ValueError(
                    f"ChannelTokenEmbedding: channel_ids has {channel_ids.shape[-1]} "
                    f"entries for {c} channels"
                )
            ch = self.channel(channel_ids)  # (C, D) or (B, C, D)
            h = h + (ch.unsqueeze(-2) if ch.dim() == 3 else ch[None, :, None])
        elif channel_ids is not None:
            raise ValueError(
                "ChannelTokenEmbedding: channel_ids given but the channel embedding is "
                "disabled (n_chans unset)"
            )
        if subject is not None:
            if self.subject is None:
                raise ValueError(
                    "ChannelTokenEmbedding: subject given but the subject embedding is "
                    "disabled (n_subjects unset)"
                )
            self._check_ids(subject, self.subject.num_embeddings, "subject")
            h = h + self.subject(subject.reshape(b))[:, None, None]
        if condition is not None:
            h = h + self._condition(condition, b, t)[:, None]
        if global_embedding is not None:
            if self.global_proj is None:
                raise ValueError(
                    "ChannelTokenEmbedding: global_embedding given but d_global is unset"
                )
            h = h + self.global_proj(global_embedding)[:, None, None]
        return self.dropout(h)

    def _condition(self, condition: Tensor, b: int, t: int) -> Tensor:
        """Embed (B, T) or (B, n_cond_tokens, T) labels into (B, T, D)."""
        if self.condition is None:
            raise ValueError("ChannelTokenEmbedding: condition given but n_conditions is unset")
        if condition.dim() == 2:
            condition = condition.unsqueeze(1)
        if (
            condition.dim() != 3
            or condition.shape[0] != b
            or condition.shape[1] != self.n_cond_tokens
            or condition.shape[2] != t
        ):
            raise ValueError(
                f"ChannelTokenEmbedding: condition must be ({b}, {t}) or "
                f"({b}, {self.n_cond_tokens}, {t}), got {tuple(condition.shape)}"
            )
        self._check_ids(condition, self.n_conditions, "condition")
        stream = torch.arange(self.n_cond_tokens, device=condition.device)[None, :, None]
        return self.condition(condition + stream * self.n_conditions).sum(dim=1)  # (B, T, D)
