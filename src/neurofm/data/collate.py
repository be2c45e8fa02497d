"""Collate window items (dicts from :class:`~neurofm.data.windows.WindowDataset`) into a Batch.

``collate`` takes a list of items (``[dataset[i] for i in indices]``) or the pre-stacked
:class:`BatchedWindows` that ``WindowDataset.__getitems__`` returns (the DataLoader calls it
with the indices of a whole batch when the dataset has it); both give the same Batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from neurofm.types import CONTEXT_FIELDS, Batch

_STACKED = ("x", "target", "condition", "channel_ids", "positions", "global_embedding")
_SCALARS = ("label", "subject", "session")
_META = ("recording", "start")


def _batch(fields: Mapping[str, Any], meta: dict[str, Any]) -> Batch:
    """A Batch of stacked ``fields``: context fields go to ``Batch.context``."""
    context = {k: v for k, v in fields.items() if k in CONTEXT_FIELDS}
    return Batch(
        x=fields["x"],
        target=fields.get("target"),
        label=fields.get("label"),
        context=context,
        meta=meta,
    )


class BatchedWindows(Sequence):
    """The windows of one batch, already stacked along a first batch axis.

    Behaves as the sequence of its items (``len``, indexing, iteration give the item dicts,
    views into the stacked tensors), so code written for a list of items keeps working;
    :func:`collate` turns it into a :class:`~neurofm.types.Batch` without copying.

    Parameters
    ----------
    fields : mapping of str to Tensor
        Item fields stacked to (B, ...): ``x`` (B, C, T) float32 and optionally ``target``
        (B, C, T'), ``condition`` (B, T), ``channel_ids`` (B, C), ``positions`` (B, C, 3), and
        (B,) int64 ``label``, ``subject``, ``session``, ``recording``, ``start``.
    """

    def __init__(self, fields: Mapping[str, torch.Tensor]) -> None:
        unknown = set(fields) - set(_STACKED) - set(_SCALARS) - set(_META)
        if "x" not in fields or unknown:
            raise ValueError(
                f"BatchedWindows: needs field 'x' and known fields, got {sorted(fields)}"
            )
        sizes = {key: int(value.shape[0]) for key, value in fields.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"BatchedWindows: fields differ in batch size: {sizes}")
        self.fields = dict(fields)

    def __len__(self) -> int:
        return int(self.fields["x"].shape[0])

    def __getitem__(self, k: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= k < n:
            raise IndexError(f"item {k} out of range for a batch of {n}")
        return {
            key: value[k] if key in _STACKED else int(value[k])
            for key, value in self.fields.items()
        }

    def to_batch(self) -> Batch:
        """The :class:`~neurofm.types.Batch` of these windows (the tensors are shared)."""
        fields = {key: self.fields[key] for key in _STACKED + _SCALARS if key in self.fields}
        meta = {key: self.fields[key] for key in _META if key in self.fields}
        return _batch(fields, meta)


def collate(items: Sequence[dict[str, Any]] | BatchedWindows) -> Batch:
    """Stack window items into a :class:`~neurofm.types.Batch` of torch tensors.

    Parameters
    ----------
    items : sequence of dict, or BatchedWindows
        Items as returned by ``WindowDataset[i]``: ``x`` (C, T) float32 and optionally
        ``target`` (C, T'), ``condition`` (T,), ``channel_ids`` (C,), ``positions`` (C, 3),
        integer ``label``/``subject``/``session``, and ``recording``/``start`` (kept in ``meta``);
        or the pre-stacked windows of ``WindowDataset.__getitems__(indices)``.

    Returns
    -------
    Batch
        ``x`` (B, C, T) contiguous float32; ``label`` (B,) int64; ``context`` with the
        ``subject``, ``session`` (B,) int64, ``channel_ids``, ``positions`` and ``condition``
        the items carry; ``meta["recording"]`` and ``meta["start"]`` (B,) int64 (store index
        and start sample).

    Raises
    ------
    ValueError
        When items disagree on their fields or shapes (e.g. windows of different channel counts
        in one batch); the message names the field and the shapes seen.
    """
    if not len(items):
        raise ValueError("collate: no items to collate")
    if isinstance(items, BatchedWindows):
        return items.to_batch()
    keys = set(items[0])
    for i, item in enumerate(items):
        if set(item) != keys:
            raise ValueError(
                f"collate: item {i} has fields {sorted(item)}, item 0 has {sorted(keys)}"
            )
    fields: dict[str, Any] = {}
    for key in _STACKED:
        if key in keys:
            check_shapes(key, [tuple(item[key].shape) for item in items])
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
    return _batch(fields, meta)


def check_shapes(key: str, shapes: Sequence[tuple[int, ...]]) -> None:
    """Raise a ValueError naming ``key`` when the windows of one batch differ in shape."""
    distinct = set(shapes)
    if len(distinct) > 1:
        raise ValueError(
            f"collate: field {key!r} has different shapes in one batch: {sorted(distinct)} "
            "(mixed channel sets need a sampler that batches recordings of one shape)"
        )
