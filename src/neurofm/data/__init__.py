"""Data layer: Recording, the prepared store, windows, samplers, splits, layouts, synthetic data."""

from neurofm.data.recording import Events, Recording

__all__ = ["Events", "Recording"]
