"""Building a model from the reference description's keyword arguments.

The GPT and flow-matching reference models are built as ``GPTCausal(vocab_size=..., n_embd=...,
n_layer=..., n_head=..., dropout=..., max_seq_len=...)``; neurofm's configs name the same sizes
``d_model``, ``n_layers`` and ``n_heads``. :func:`reference_config` maps one onto the other so that
both spellings build the same model.
"""

from __future__ import annotations

from typing import Any, TypeVar

from neurofm.config import build_config

REFERENCE_NAMES = {"n_embd": "d_model", "n_layer": "n_layers", "n_head": "n_heads"}
"""Reference argument name -> neurofm config field."""

C = TypeVar("C")


def reference_config(config_cls: type[C], config: C | None, who: str, **given: Any) -> C:
    """``config``, or a ``config_cls`` built from the reference-style keywords that were given.

    Keywords left as ``None`` keep the config's defaults. Passing both a config and keywords is
    an error (which one would win is not obvious).
    """
    fields = {REFERENCE_NAMES.get(k, k): v for k, v in given.items() if v is not None}
    if config is not None:
        if fields:
            raise ValueError(
                f"{who}: pass a config or keyword sizes, not both (got {sorted(fields)})"
            )
        return config
    if "vocab_size" not in fields:
        raise ValueError(f"{who}: vocab_size is required when no config is given")
    return build_config(config_cls, fields, prefix=who)
