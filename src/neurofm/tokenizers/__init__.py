"""Tokenizers, one module each, registered in ``neurofm.registry.TOKENIZERS``.

Importing this package imports every tokenizer module so that their ``@TOKENIZERS.register`` run.
"""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
