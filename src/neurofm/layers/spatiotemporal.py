"""Spatiotemporal block: attention over channels, then a transformer block over time.

Factorised ("divided") space-time attention as in TimeSformer (Bertasius et al. 2021,
arXiv:2102.05095), with channels in the role of image patches:

1. ``x + channel_attn(norm(x))``: at every time step, full attention among that step's channels.
   There is no positional encoding over channels, so the branch treats channels as an unordered
   set (channel identity comes from the input's channel-id embedding).
2. ``temporal``: a :class:`~neurofm.layers.blocks.TransformerBlock` (time attention, then its
   MLP, dense or mixture-of-experts) run over time, independently per channel.

The channel branch at time t reads only time t, so with a causal time block the whole block is
causal in time and decodes incrementally with a :class:`~neurofm.layers.attention.KVCache` over
time whose batch is B*C.
"""

from __future__ import annotations

from torch import Tensor, nn

from neurofm.layers.attention import KVCache, MultiHeadAttention
from neurofm.layers.blocks import TransformerBlock
from neurofm.layers.norms import NormName, make_norm


class SpatioTemporalBlock(nn.Module):
    """Channel attention per time step, then ``temporal`` per channel; (B, C, T, D).

    Parameters
    ----------
    temporal : TransformerBlock
        The block run over time within each channel; the channel attention takes its feature
        size and number of heads.
    norm : {"rms", "layer"}
        Normalisation before the channel attention.
    dropout : float
        Dropout in the channel attention.
    bias : bool
        Biases in the channel attention's projections.
    """

    def __init__(
        self,
        temporal: TransformerBlock,
        *,
        norm: NormName = "rms",
        dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        n_heads = temporal.attn.n_heads
        d_model = n_heads * temporal.attn.head_dim
        self.norm_channel = make_norm(norm, d_model)
        self.channel_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.temporal = temporal

    @property
    def aux_losses(self) -> dict[str, Tensor]:
        """The time block's auxiliary losses of the latest forward (see ``TransformerBlock``)."""
        return self.temporal.aux_losses

    def forward(self, x: Tensor, *, causal: bool = True, cache: KVCache | None = None) -> Tensor:
        """Apply the block to ``x`` (B, C, T, D); returns the same shape.

        Parameters
        ----------
        x : Tensor, shape (B, C, T, D)
            With ``cache``, the time steps following the cached ones.
        causal : bool
            Causal attention over time.
        cache : KVCache, optional
            Time-attention cache of batch B*C, updated in place.
        """
        if x.dim() != 4:
            raise ValueError(f"SpatioTemporalBlock: expected (B, C, T, D), got {tuple(x.shape)}")
        b, c, t, d = x.shape
        h = x.transpose(1, 2).reshape(b * t, c, d)  # one set of channels per time step
        h = h + self.channel_attn(self.norm_channel(h))
        h = h.view(b, t, c, d).transpose(1, 2).reshape(b * c, t, d)  # one sequence per channel
        h = self.temporal(h, causal=causal, cache=cache)
        return h.view(b, c, t, d)
