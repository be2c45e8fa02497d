"""Perceiver-IO fusion (Jaegle et al. 2021) and a population transformer (PopT, Chau et al. 2024).

:class:`PerceiverIO` compresses any number of input tokens into a fixed set of learned latents
(cross-attention in, latent self-attention) and reads them out at any set of queries
(cross-attention out). :class:`PopulationTransformer` pools per-channel / per-unit embeddings
into one population vector: no positions and a masked set of tokens, so its output does not
depend on the order of the units, and any number of units is accepted.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neurofm.layers.attention import MultiHeadAttention
from neurofm.layers.blocks import TransformerBlock
from neurofm.layers.mlp import MLP
from neurofm.layers.norms import RMSNorm


class CrossAttentionBlock(nn.Module):
    """``q + attn(norm(q), norm(context))`` then ``+ mlp(norm(.))`` on queries (B, Q, d_model)."""

    def __init__(self, d_model: int, n_heads: int, *, d_context: int, dropout: float = 0.0):
        super().__init__()
        self.norm_query = RMSNorm(d_model)
        self.norm_context = RMSNorm(d_context)
        self.attn = MultiHeadAttention(d_model, n_heads, d_context=d_context, dropout=dropout)
        self.norm_mlp = RMSNorm(d_model)
        self.mlp = MLP(d_model, dropout=dropout)

    def forward(self, query: Tensor, context: Tensor, *, attn_mask: Tensor | None = None) -> Tensor:
        """Attend from ``query`` (B, Q, d_model) to ``context`` (B, S, d_context).

        ``attn_mask`` (B, 1, 1, S) boolean, True where a context token may be attended.
        """
        query = query + self.attn(
            self.norm_query(query), context=self.norm_context(context), attn_mask=attn_mask
        )
        return query + self.mlp(self.norm_mlp(query))


class PerceiverIO(nn.Module):
    """``n_layers`` x (cross-attention latents <- inputs, latent self-attention).

    Parameters
    ----------
    d_input : int
        Feature size of the input tokens.
    n_latents : int
        Learned latent vectors.
    d_latent : int
        Latent feature size.
    n_layers : int
        Cross + self attention layers.
    n_heads : int
        Attention heads (divide ``d_latent``).
    dropout : float
    """

    def __init__(
        self,
        d_input: int,
        *,
        n_latents: int,
        d_latent: int,
        n_layers: int,
        n_heads: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.latents = nn.Parameter(0.02 * torch.randn(n_latents, d_latent))
        self.cross = nn.ModuleList(
            CrossAttentionBlock(d_latent, n_heads, d_context=d_input, dropout=dropout)
            for _ in range(n_layers)
        )
        self.self_attn = nn.ModuleList(
            TransformerBlock(d_latent, n_heads, rotary=False, dropout=dropout)
            for _ in range(n_layers)
        )
        self.norm = RMSNorm(d_latent)

    def encode(
        self, inputs: Tensor, *, extra: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """Latents (B, n_latents, d_latent) of ``inputs`` (B, S, d_input).

        ``extra`` (B, d_latent), e.g. a population vector, is added to every initial latent.
        ``mask`` (B, S) boolean, True for the inputs the latents may attend (padding: False;
        every row needs at least one True).
        """
        latents = self.latents.expand(inputs.shape[0], -1, -1)
        if extra is not None:
            latents = latents + extra[:, None]
        attn_mask = None if mask is None else mask.bool()[:, None, None, :]
        for cross, block in zip(self.cross, self.self_attn):
            latents = block(cross(latents, inputs, attn_mask=attn_mask), causal=False)
        return self.norm(latents)


class PopulationTransformer(nn.Module):
    """A transformer over a set of unit tokens with a learned summary token, no positions.

    Parameters
    ----------
    d_model : int
    n_layers : int
    n_heads : int
    dropout : float
    """

    def __init__(self, d_model: int, *, n_layers: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.summary = nn.Parameter(0.02 * torch.randn(d_model))
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, rotary=False, dropout=dropout)
            for _ in range(n_layers)
        )
        self.norm = RMSNorm(d_model)

    def forward(self, tokens: Tensor, *, mask: Tensor | None = None) -> Tensor:
        """Population vector (B, d_model) of ``tokens`` (B, U, d_model).

        ``mask`` (B, U) boolean, True for the units present (absent ones are never attended).
        """
        b, u, _ = tokens.shape
        h = torch.cat([self.summary.expand(b, 1, -1), tokens], dim=1)  # (B, 1 + U, D)
        attn_mask = None
        if mask is not None:
            if mask.shape != (b, u):
                raise ValueError(
                    f"PopulationTransformer: mask {tuple(mask.shape)} for tokens {(b, u)}"
                )
            keep = torch.cat([mask.new_ones(b, 1), mask.bool()], dim=1)
            attn_mask = keep[:, None, None, :]  # (B, 1, 1, 1 + U)
        for block in self.blocks:
            h = block(h, causal=False, attn_mask=attn_mask)
        return self.norm(h[:, 0])
