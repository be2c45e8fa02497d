"""Sampling from trained models: autoregressive generation with a key/value cache."""

from neurofm.generation.autoregressive import (
    GenerationResult,
    filter_logits,
    generate,
    generate_from_window,
    generate_with_logits,
    sample_logits,
)

__all__ = [
    "GenerationResult",
    "filter_logits",
    "generate",
    "generate_from_window",
    "generate_with_logits",
    "sample_logits",
]
