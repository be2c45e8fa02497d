"""neurofm.io."""
