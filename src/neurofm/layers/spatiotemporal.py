"""Spatiotemporal block: attention over channels, then causal attention over time, then MLP.

Factorised ("divided") space-time attention as in TimeSformer (Bertasius et al. 2021,
arXiv:2102.05095), with channels in the role of image patches:

1. ``x + channel_attn(norm(x))``: at every time step, full attention among that step's channels.
   There is no positional encoding over channels, so the branch treats channels as an unordered
   set (channel identity comes from the input's channel-id embedding).
2. ``x + time_attn(norm(x))`` then ``x + mlp(norm(x))``: a causal RoPE
   :class:`~neurofm.layers.blocks.TransformerBlock` run over time, independently per channel.

The channel branch at time t reads only time t, so the block is causal in time and decodes
incrementally with a :class:`~neurofm.layers.attention.KVCache` over time whose batch is B*C.
"""

from __future__ import annotations

from torch import Tensor, nn

from neurofm.layers.attention import KVCache, MultiHeadAttention
from neurofm.layers.blocks import TransformerBlock
from neurofm.layers.mlp import Activation
from neurofm.layers.norms import NormName, make_norm


class SpatioTemporalBlock(nn.Module):
    """Channel attention per time step, causal time attention per channel, MLP; (B, C, T, D).

    Parameters
    ----------
    d_model : int
        Feature size ``D``.
    n_heads : int
        Heads of both attentions; must divide ``d_model`` (head size even for RoPE).
    d_hidden : int or None
        MLP hidden size (default from :class:`~neurofm.layers.mlp.MLP`).
    activation : {"gelu", "squared_relu", "swiglu"}
        MLP non-linearity.
    norm : {"rms", "layer"}
        Normalisation before each branch.
    dropout : float
        Dropout in the attentions and the MLP.
    bias : bool
        Biases in the linear layers.
    rope_base : float
        RoPE wavelength base of the time attention.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        d_hidden: int | None = None,
        activation: Activation = "gelu",
        norm: NormName = "rms",
        dropout: float = 0.0,
        bias: bool = False,
        rope_base: float = 10000.0,
    ) -> None:
        super().__init__()
        self.norm_channel = make_norm(norm, d_model)
        self.channel_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.temporal = TransformerBlock(
            d_model,
            n_heads,
            d_hidden=d_hidden,
            activation=activation,
            norm=norm,
            dropout=dropout,
            bias=bias,
            rotary=True,
            rope_base=rope_base,
        )

    def forward(self, x: Tensor, *, cache: KVCache | None = None) -> Tensor:
        """Apply the block to ``x`` (B, C, T, D); returns the same shape.

        Parameters
        ----------
        x : Tensor, shape (B, C, T, D)
            With ``cache``, the time steps following the cached ones.
        cache : KVCache, optional
            Time-attention cache of batch B*C, updated in place.
        """
        if x.dim() != 4:
            raise ValueError(f"SpatioTemporalBlock: expected (B, C, T, D), got {tuple(x.shape)}")
        b, c, t, d = x.shape
        h = x.transpose(1, 2).reshape(b * t, c, d)  # one set of channels per time step
        h = h + self.channel_attn(self.norm_channel(h))
        h = h.view(b, t, c, d).transpose(1, 2).reshape(b * c, t, d)  # one sequence per channel
        h = self.temporal(h, causal=True, cache=cache)
        return h.view(b, c, t, d)
