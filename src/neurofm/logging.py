"""neurofm's logger. Library code warns through it, never through print."""

from __future__ import annotations

import logging as _logging

logger = _logging.getLogger("neurofm")
if not logger.handlers:
    _handler = _logging.StreamHandler()
    _handler.setFormatter(_logging.Formatter("neurofm %(levelname)s: %(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(_logging.INFO)
    logger.propagate = False


def get_logger(name: str | None = None) -> _logging.Logger:
    """Return neurofm's logger or one of its children."""
    return logger if name is None else logger.getChild(name)
