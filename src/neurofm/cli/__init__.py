"""neurofm.cli."""
