"""Shared neural-network building blocks used by every model family.

- :class:`RMSNorm`, :func:`make_norm` (``"rms"`` / ``"layer"``)
- :class:`RotaryEmbedding` (positions offset for cached decoding), :func:`apply_rotary`
- :class:`MultiHeadAttention` on ``scaled_dot_product_attention`` with :class:`KVCache`
- :class:`MLP` (``"gelu"``, ``"squared_relu"``, ``"swiglu"``)
- :class:`ChannelTokenEmbedding` (codes + channel + subject + condition + global)
- :class:`TransformerBlock` (pre-norm, optional cross-attention, cache)
- :class:`CausalConv1d`, :class:`DilatedResidualBlock` (GELU or gated, optional skip),
  :func:`receptive_field`
"""

from neurofm.layers.attention import KVCache, MultiHeadAttention, causal_mask
from neurofm.layers.blocks import TransformerBlock
from neurofm.layers.conv import (
    CONV_ACTIVATIONS,
    CausalConv1d,
    ConvActivation,
    DilatedResidualBlock,
    receptive_field,
)
from neurofm.layers.embeddings import ChannelTokenEmbedding
from neurofm.layers.mlp import ACTIVATIONS, MLP, Activation
from neurofm.layers.norms import NORMS, NormName, RMSNorm, make_norm
from neurofm.layers.rope import RotaryEmbedding, apply_rotary, rotate_half

__all__ = [
    "ACTIVATIONS",
    "CONV_ACTIVATIONS",
    "MLP",
    "NORMS",
    "Activation",
    "CausalConv1d",
    "ChannelTokenEmbedding",
    "ConvActivation",
    "DilatedResidualBlock",
    "KVCache",
    "MultiHeadAttention",
    "NormName",
    "RMSNorm",
    "RotaryEmbedding",
    "TransformerBlock",
    "apply_rotary",
    "causal_mask",
    "make_norm",
    "receptive_field",
    "rotate_half",
]
