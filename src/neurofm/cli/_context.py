"""Dotted overrides taken from the command line (``--model.n_layers 4``) for the running command."""

from typing import Any

OVERRIDES: dict[str, Any] = {}


def take_overrides() -> dict[str, Any]:
    """Return and clear the overrides given on the command line."""
    out = dict(OVERRIDES)
    OVERRIDES.clear()
    return out
