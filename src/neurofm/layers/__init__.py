"""Shared neural-network building blocks used by every model family.

- :class:`RMSNorm`, :func:`make_norm` (``"rms"`` / ``"layer"``)
- :class:`RotaryEmbedding` (positions offset for cached decoding), :func:`apply_rotary`
- :class:`MultiHeadAttention` on ``scaled_dot_product_attention`` with :class:`KVCache`, or
  with sliding-window attention and its bounded ring cache :class:`SlidingKVCache`
- :class:`MLP` (``"gelu"``, ``"squared_relu"``, ``"swiglu"``)
- :class:`MoEMLP` (top-k routed experts with Switch load-balancing and router z-losses)
- :class:`ContextEmbedding` (subject + condition + global), :class:`ChannelTokenEmbedding`
  (codes + channel + context)
- :class:`TransformerBlock` (pre-norm, dense or MoE MLP, optional cross-attention, cache),
  :class:`SpatioTemporalBlock` (channel attention, then a TransformerBlock over time)
- :class:`CausalConv1d`, :class:`CausalConv3d`, :class:`DilatedResidualBlock` (GELU or gated,
  optional skip, over time or sensor grids, streamed step by step), :func:`receptive_field`
- :class:`ChannelCodeInput`, :class:`ChannelHead` (all channels of a time step in, per-channel
  logits out), :func:`channel_ids_for`
- :class:`MixtureSoftmaxHead` (a mixture of softmaxes over a vocabulary)
- :class:`PositionGrid` (channels on a sensor grid from their positions)
- :class:`OscillatorSSM` (damped-oscillator state-space layer), :class:`OscillatorBlock`
- :class:`TimestepEmbedding` (sinusoid + MLP), :class:`MaskedConv1d` (partial convolution over
  observed samples), :class:`AdaptiveConvBlock` (residual conv block with FiLM conditioning)
- :class:`AdaLNBlock`, :class:`AdaLNOutput` (transformer block and final norm modulated by a
  condition vector, DiT / VAR style)
- :func:`init_gpt2` (GPT-2 initialisation with scaled residual projections)
- :mod:`neurofm.layers.fused`: first convolutions folded into their 1x1 lift or embedding, and
  channels-last convolution stacks (the compact decoders' inference paths)
"""

from neurofm.layers.adaln import AdaLNBlock, AdaLNOutput
from neurofm.layers.attention import MultiHeadAttention, causal_mask
from neurofm.layers.blocks import TransformerBlock
from neurofm.layers.channelwise import ChannelCodeInput, ChannelHead, channel_ids_for
from neurofm.layers.conv import (
    CONV_ACTIVATIONS,
    CausalConv1d,
    CausalConv3d,
    ConvActivation,
    DilatedResidualBlock,
    receptive_field,
)
from neurofm.layers.denoising import (
    AdaptiveConvBlock,
    MaskedConv1d,
    TimestepEmbedding,
    sinusoidal_embedding,
)
from neurofm.layers.embeddings import ChannelTokenEmbedding, ContextEmbedding, check_ids
from neurofm.layers.grid import PositionGrid
from neurofm.layers.heads import MixtureSoftmaxHead
from neurofm.layers.init import init_gpt2
from neurofm.layers.kv_cache import KVCache, SlidingKVCache
from neurofm.layers.mlp import ACTIVATIONS, MLP, Activation
from neurofm.layers.moe import MoEMLP
from neurofm.layers.norms import NORMS, NormName, RMSNorm, make_norm
from neurofm.layers.rope import RotaryEmbedding, apply_rotary, rotate_half
from neurofm.layers.spatiotemporal import SpatioTemporalBlock
from neurofm.layers.ssm import OscillatorBlock, OscillatorSSM

__all__ = [
    "ACTIVATIONS",
    "AdaLNBlock",
    "AdaLNOutput",
    "AdaptiveConvBlock",
    "MaskedConv1d",
    "TimestepEmbedding",
    "sinusoidal_embedding",
    "CONV_ACTIVATIONS",
    "MLP",
    "MixtureSoftmaxHead",
    "MoEMLP",
    "NORMS",
    "Activation",
    "CausalConv1d",
    "CausalConv3d",
    "ChannelCodeInput",
    "ChannelHead",
    "ChannelTokenEmbedding",
    "ContextEmbedding",
    "ConvActivation",
    "DilatedResidualBlock",
    "KVCache",
    "MultiHeadAttention",
    "NormName",
    "OscillatorBlock",
    "OscillatorSSM",
    "PositionGrid",
    "RMSNorm",
    "RotaryEmbedding",
    "SlidingKVCache",
    "SpatioTemporalBlock",
    "TransformerBlock",
    "apply_rotary",
    "causal_mask",
    "channel_ids_for",
    "check_ids",
    "init_gpt2",
    "make_norm",
    "receptive_field",
    "rotate_half",
]
