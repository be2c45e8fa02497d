"""neurofm.evaluation."""
