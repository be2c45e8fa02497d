"""neurofm.generation."""
