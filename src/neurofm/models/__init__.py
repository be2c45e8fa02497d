"""Model families, one module (or subpackage) each, registered in ``neurofm.registry.MODELS``.

Importing this package imports every family module so that their ``@MODELS.register`` run.
"""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
