"""Sampling from trained models: settings shared by every sampler, autoregressive generation
with a key/value cache, and writing generated signals (``export``)."""

from neurofm.generation.autoregressive import (
    GenerationResult,
    generate,
    generate_from_window,
    generate_with_logits,
)
from neurofm.generation.next_band import generate_bands
from neurofm.generation.sampling import SamplingConfig, filter_logits, sample_logits

__all__ = [
    "GenerationResult",
    "SamplingConfig",
    "filter_logits",
    "generate",
    "generate_bands",
    "generate_from_window",
    "generate_with_logits",
    "sample_logits",
]
