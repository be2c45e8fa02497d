"""Collate window items (dicts from :class:`~neurofm.data.windows.WindowDataset`) into a Batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from neurofm.types import Batch

_STACKED = ("x", "target", "condition", "channel_ids", "positions")
_SCALARS = ("label", "subject", "session")
_META = ("recording", "start")


def collate(items: Sequence[dict[str, Any]]) -> Batch:
    """Stack window items into a :class:`~neurofm.types.Batch` of torch tensors.

    Parameters
    ----------
    items : sequence of dict
        Items as returned by ``WindowDataset[i]``: ``x`` (C, T) float32 and optionally
        ``target`` (C, T'), ``condition`` (T,), ``channel_ids`` (C,), ``positions`` (C, 3),
        integer ``label``/``subject``/``session``, and ``recording``/``start`` (kept in ``meta``).

    Returns
    -------
    Batch
        ``x`` (B, C, T) contiguous float32; ``label``, ``subject``, ``session`` (B,) int64;
        ``meta["recording"]`` and ``meta["start"]`` (B,) int64 (store index and start sample).

    Raises
    ------
    ValueError
        When items disagree on their fields or shapes (e.g. windows of different channel counts
        in one batch); the message names the field and the shapes seen.
    """
    if not items:
        raise ValueError("collate: no items to collate")
    keys = set(items[0])
    for i, item in enumerate(items):
        if set(item) != keys:
            raise ValueError(
                f"collate: item {i} has fields {sorted(item)}, item 0 has {sorted(keys)}"
            )
    fields: dict[str, Any] = {}
    for key in _STACKED:
        if key in keys:
            shapes = {tuple(item[key].shape) for item in items}
            if len(shapes) > 1:
                raise ValueError(
                    f"collate: field {key!r} has different shapes in one batch: {sorted(shapes)} "
                    "(mixed channel sets need a sampler that batches recordings of one shape)"
                )
            fields[key] = torch.stack([torch.as_tensor(item[key]) for item in items])
    for key in _SCALARS:
        if key in keys:
            fields[key] = torch.tensor([int(item[key]) for item in items], dtype=torch.int64)
    meta = {
        key: torch.tensor([int(item[key]) for item in items], dtype=torch.int64)
        for key in _META
        if key in keys
    }
    unknown = keys - set(_STACKED) - set(_SCALARS) - set(_META)
    if unknown:
        raise ValueError(f"collate: unknown item fields {sorted(unknown)}")
    return Batch(**fields, meta=meta)
