"""neurofm.training."""
