"""Text segments served as items of input kind ``"signal_text"``: :class:`TextSegmentDataset`
and :func:`collate_text_segments` (re-exported by :mod:`neurofm.data.text_segments`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from neurofm.types import Batch


class TextSegmentDataset(torch.utils.data.Dataset):
    """Text segments as items of input kind ``"signal_text"`` (a torch map-style dataset).

    Parameters
    ----------
    segments : sequence of TextSegment
        From :func:`~neurofm.data.text_segments.segment_recording`.
    tokenizer : callable, optional
        ``text -> list of token ids``; without it items carry no token ids (``tokens`` None).

    Notes
    -----
    An item is ``{"x": (C, T) float32 tensor, "tokens": (L,) int64 tensor or None, "text",
    "subject", "session", "story", "onset", "index"}``; batch them with
    :func:`collate_text_segments`.
    """

    def __init__(
        self,
        segments: Sequence[Any],
        *,
        tokenizer: Callable[[str], list[int]] | None = None,
    ) -> None:
        if not len(segments):
            raise ValueError("TextSegmentDataset: no segments")
        self.segments = list(segments)
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int) -> dict[str, Any]:
        segment = self.segments[index]
        tokens = None
        if self.tokenizer is not None:
            ids = list(self.tokenizer(segment.text))
            if not ids:
                raise ValueError(
                    f"TextSegmentDataset: the tokenizer gave no ids for {segment.describe()}"
                )
            tokens = torch.tensor(ids, dtype=torch.int64)
        return {
            "x": torch.from_numpy(np.ascontiguousarray(segment.signal, dtype=np.float32)),
            "tokens": tokens,
            "text": segment.text,
            "subject": segment.subject,
            "session": segment.session,
            "story": segment.story,
            "onset": segment.onset,
            "index": index,
            "name": segment.describe(),
        }


def collate_text_segments(items: Sequence[dict[str, Any]], pad_id: int) -> Batch:
    """Stack items of :class:`TextSegmentDataset` into a :class:`~neurofm.types.Batch`.

    Parameters
    ----------
    items : sequence of dict
        Items of one batch; every signal must have the same (C, T).
    pad_id : int
        Token id that fills the end of shorter token sequences.

    Returns
    -------
    Batch
        ``x`` (B, C, T) float32; ``target`` (B, L) int64 token ids padded with ``pad_id`` (None
        when the items carry no tokens); ``meta``: ``text``, ``subject``, ``session``, ``story``,
        ``onset`` (lists), ``index`` (B,) int64 and ``text_mask`` (B, L) bool (True on real
        tokens; None without tokens).

    Raises
    ------
    ValueError
        Signals of different shapes (naming both segments), or some items with tokens and some
        without. Nothing is padded or cut silently.
    """
    if not len(items):
        raise ValueError("collate_text_segments: no items")
    shape = tuple(items[0]["x"].shape)
    for item in items[1:]:
        if tuple(item["x"].shape) != shape:
            raise ValueError(
                f"collate_text_segments: signal of {item['name']} has shape "
                f"{tuple(item['x'].shape)}, {items[0]['name']} has {shape}; cut segments with "
                "window_seconds so that every segment has the same length"
            )
    has_tokens = [item["tokens"] is not None for item in items]
    if any(has_tokens) and not all(has_tokens):
        raise ValueError("collate_text_segments: some items have token ids and some do not")
    target = mask = None
    if all(has_tokens):
        length = max(len(item["tokens"]) for item in items)
        target = torch.full((len(items), length), int(pad_id), dtype=torch.int64)
        mask = torch.zeros((len(items), length), dtype=torch.bool)
        for b, item in enumerate(items):
            target[b, : len(item["tokens"])] = item["tokens"]
            mask[b, : len(item["tokens"])] = True
    meta = {key: [item[key] for item in items] for key in ("text", "subject", "session", "story")}
    meta["onset"] = [float(item["onset"]) for item in items]
    meta["index"] = torch.tensor([int(item["index"]) for item in items], dtype=torch.int64)
    meta["text_mask"] = mask
    x = torch.stack([item["x"] for item in items]).to(torch.float32).contiguous()
    return Batch(x=x, target=target, meta=meta)
