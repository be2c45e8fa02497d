"""neurofm.preprocessing."""
