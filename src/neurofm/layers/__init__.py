"""neurofm.layers."""
