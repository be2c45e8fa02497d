"""The pre-norm transformer block (attention + MLP, each in a residual branch).

The MLP is a dense :class:`~neurofm.layers.mlp.MLP` by default; any module mapping (..., D) to
(..., D) may take its place (``mlp=``), e.g. a :class:`~neurofm.layers.moe.MoEMLP` of routed
experts. The forward always returns the block's output alone; routing losses of an MoE MLP are
read after the call from :attr:`TransformerBlock.aux_losses`.
"""

from __future__ import annotations

from torch import Tensor, nn

from neurofm.layers.attention import KVCache, MultiHeadAttention
from neurofm.layers.mlp import MLP, Activation
from neurofm.layers.moe import MoEMLP
from neurofm.layers.norms import NormName, make_norm


class TransformerBlock(nn.Module):
    """``x + attn(norm(x))`` [``+ cross_attn(norm(x), context)``] ``+ mlp(norm(x))``.

    Parameters
    ----------
    d_model : int
        Feature size.
    n_heads : int
        Attention heads; must divide ``d_model``.
    d_hidden : int or None
        Dense MLP hidden size (default from :class:`~neurofm.layers.mlp.MLP`).
    activation : {"gelu", "squared_relu", "swiglu"}
        Dense MLP non-linearity.
    norm : {"rms", "layer"}
        Normalisation before each branch.
    dropout : float
        Dropout in attention and MLP.
    bias : bool
        Biases in the linear layers.
    rotary : bool
        RoPE in the self-attention.
    rope_base : float
        RoPE wavelength base.
    cross_attention : bool
        Add a cross-attention branch to a ``context`` sequence.
    d_context : int or None
        Context feature size (default ``d_model``).
    mlp : nn.Module or None
        The feed-forward branch, (..., d_model) -> (..., d_model); default a dense
        :class:`~neurofm.layers.mlp.MLP` built from ``d_hidden``, ``activation``, ``dropout`` and
        ``bias``. Pass a :class:`~neurofm.layers.moe.MoEMLP` for routed experts.
    n_kv_heads : int or None
        Key/value heads of the self-attention (grouped-query attention; default ``n_heads``).
    window : int or None
        Sliding-window causal self-attention over the last ``window`` positions (None: all);
        see :class:`~neurofm.layers.attention.MultiHeadAttention`.
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
        rotary: bool = True,
        rope_base: float = 10000.0,
        cross_attention: bool = False,
        d_context: int | None = None,
        mlp: nn.Module | None = None,
        n_kv_heads: int | None = None,
        window: int | None = None,
    ) -> None:
        super().__init__()
        self.norm_attn = make_norm(norm, d_model)
        self.attn = MultiHeadAttention(
            d_model,
            n_heads,
            dropout=dropout,
            bias=bias,
            rotary=rotary,
            rope_base=rope_base,
            n_kv_heads=n_kv_heads,
            window=window,
        )
        if cross_attention:
            self.norm_cross = make_norm(norm, d_model)
            self.cross_attn = MultiHeadAttention(
                d_model, n_heads, d_context=d_context, dropout=dropout, bias=bias
            )
        else:
            self.norm_cross = None
            self.cross_attn = None
        self.norm_mlp = make_norm(norm, d_model)
        if mlp is None:
            mlp = MLP(d_model, d_hidden=d_hidden, activation=activation, dropout=dropout, bias=bias)
        self.mlp = mlp

    @property
    def aux_losses(self) -> dict[str, Tensor]:
        """Unweighted auxiliary losses of the latest forward (an MoE MLP's ``load_balance`` and
        ``router_z``); empty for a dense MLP."""
        return self.mlp.aux_losses if isinstance(self.mlp, MoEMLP) else {}

    def forward(
        self,
        x: Tensor,
        *,
        causal: bool = True,
        attn_mask: Tensor | None = None,
        context: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Apply the block to ``x`` (B, T, d_model); returns the same shape.

        Parameters
        ----------
        x : Tensor, shape (B, T, d_model)
        causal : bool
            Causal self-attention.
        attn_mask : Tensor, optional
            Boolean self-attention mask, True where allowed (see ``MultiHeadAttention``).
        context : Tensor, shape (B, S, d_context), optional
            Cross-attention source; required when the block has cross-attention.
        cache : KVCache, optional
            Self-attention cache, updated in place.
        """
        x = x + self.attn(self.norm_attn(x), causal=causal, attn_mask=attn_mask, cache=cache)
        if self.cross_attn is not None:
            if context is None:
                raise ValueError("TransformerBlock: this block has cross-attention; pass a context")
            x = x + self.cross_attn(self.norm_cross(x), context=context)
        elif context is not None:
            raise ValueError("TransformerBlock: context given but cross_attention=False")
        return x + self.mlp(self.norm_mlp(x))
