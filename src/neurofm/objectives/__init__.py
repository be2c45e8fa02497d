"""Objectives own the loss and the targets; no Lightning here.

Each objective module registers itself in ``OBJECTIVES``; importing this package imports them.
"""

import importlib

from neurofm.objectives.base import Objective, ObjectiveOutput

__all__ = ["Objective", "ObjectiveOutput"]

_MODULES: list[str] = []


def _register_modules() -> None:
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_register_modules()
