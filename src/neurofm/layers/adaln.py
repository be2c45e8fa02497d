"""Transformer block with adaptive layer norm (AdaLN) conditioning, as in DiT and VAR.

A condition vector (e.g. a class embedding) sets, per item, the shift and scale of both
pre-norms and a gate on both residual branches: ``x + gate1 * attn(norm(x) * (1 + scale1) +
shift1)``, then the same for the MLP. The modulation starts at zero weights with the gates'
biases at ``gate_init``, so that a new block is close to the identity (VAR's small AdaLN gain).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from neurofm.layers.attention import MultiHeadAttention
from neurofm.layers.mlp import MLP


class AdaLNBlock(nn.Module):
    """Pre-norm self-attention + MLP block modulated by a condition vector (B, d_cond).

    Parameters
    ----------
    d_model : int
        Feature size.
    n_heads : int
        Attention heads; must divide ``d_model``.
    d_cond : int
        Size of the condition vector.
    dropout : float
        Dropout in attention and MLP.
    gate_init : float
        Initial gate of both residual branches.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_cond: int,
        *,
        dropout: float = 0.0,
        gate_init: float = 1e-3,
    ) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(d_model, elementwise_affine=False)
        self.attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=True, rotary=False)
        self.norm_mlp = nn.LayerNorm(d_model, elementwise_affine=False)
        self.mlp = MLP(d_model, dropout=dropout, bias=True)
        self.modulation = nn.Linear(d_cond, 6 * d_model)
        nn.init.zeros_(self.modulation.weight)
        with torch.no_grad():
            bias = torch.zeros(6, d_model)
            bias[2] = bias[5] = gate_init
            self.modulation.bias.copy_(bias.flatten())

    def forward(self, x: Tensor, cond: Tensor, *, attn_mask: Tensor | None = None) -> Tensor:
        """Apply the block to ``x`` (B, N, d_model) under ``cond`` (B, d_cond); same shape out.

        ``attn_mask`` is a boolean self-attention mask, True where attending is allowed.
        """
        mods = self.modulation(F.silu(cond)).unsqueeze(1).chunk(6, dim=-1)
        shift1, scale1, gate1, shift2, scale2, gate2 = mods
        h = self.norm_attn(x) * (1 + scale1) + shift1
        x = x + gate1 * self.attn(h, causal=False, attn_mask=attn_mask)
        h = self.norm_mlp(x) * (1 + scale2) + shift2
        return x + gate2 * self.mlp(h)


class AdaLNOutput(nn.Module):
    """Final AdaLN norm: ``norm(x) * (1 + scale) + shift`` with shift and scale from ``cond``."""

    def __init__(self, d_model: int, d_cond: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model, elementwise_affine=False)
        self.modulation = nn.Linear(d_cond, 2 * d_model)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        shift, scale = self.modulation(F.silu(cond)).unsqueeze(1).chunk(2, dim=-1)
        return self.norm(x) * (1 + scale) + shift
