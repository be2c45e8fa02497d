"""Sampling from trained models: settings shared by every sampler, autoregressive generation
with a key/value cache (channels of a time step drawn jointly through a ``ChannelCopula``), coarse-to-fine over frequency bands (continuous and band-stage tokens), writing generated signals (``export``), and the denoisers' samplers
(``flow``: discrete flow matching; ``diffusion``: DDPM / DDIM), imported from their modules
because their libraries are optional."""

from neurofm.generation.autoregressive import (
    GenerationResult,
    generate,
    generate_from_window,
    generate_with_logits,
)
from neurofm.generation.band_tokens import generate_band_tokens
from neurofm.generation.copula import ChannelCopula
from neurofm.generation.next_band import generate_bands
from neurofm.generation.sampling import SamplingConfig, filter_logits, sample_logits

__all__ = [
    "ChannelCopula",
    "GenerationResult",
    "SamplingConfig",
    "filter_logits",
    "generate",
    "generate_band_tokens",
    "generate_bands",
    "generate_from_window",
    "generate_with_logits",
    "sample_logits",
]
