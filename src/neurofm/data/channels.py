"""Match channels by name: what a model expects against what a recording gives.

A model trained on one channel set must see the same channels, in the same order, at inference.
:func:`match_channels` returns the index of every expected channel among the given ones, so that
permuted inputs are reordered by name. Missing or renamed channels raise a
:class:`~neurofm.errors.ChannelMismatchError` that lists them, unless an explicit policy says
otherwise. Nothing here ever pads a missing channel with zeros.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neurofm.errors import ChannelMismatchError

POLICIES = ("raise", "drop_extra", "intersect")
"""Channel matching policies.

``"raise"``
    The given channels must be exactly the expected ones (any order).
``"drop_extra"``
    Given channels that are not expected are ignored; a missing expected channel still raises.
``"intersect"``
    Keep the expected channels that are present, in expected order; the missing ones are
    reported in :attr:`ChannelMatch.missing` (the caller must handle a smaller channel set).
"""


class ChannelMatch:
    """The result of :func:`match_channels`.

    Attributes
    ----------
    index : ndarray of int64, shape (C_out,)
        Position in the given channels of each kept expected channel, in expected order:
        ``x_given[..., index, :]`` has the expected layout.
    names : list of str
        The kept expected channel names (``C_out`` of them), in expected order.
    missing : list of str
        Expected channels absent from the given ones (non-empty only with ``"intersect"``).
    extra : list of str
        Given channels that are not expected (ignored).
    """

    def __init__(
        self, index: np.ndarray, names: list[str], missing: list[str], extra: list[str]
    ) -> None:
        self.index = index
        self.names = names
        self.missing = missing
        self.extra = extra

    @property
    def is_identity(self) -> bool:
        """True when the given channels are already exactly the expected ones, in order."""
        return not self.extra and np.array_equal(self.index, np.arange(self.index.size))

    def apply(self, x: Any) -> Any:
        """Reorder the channel axis (``-2``) of ``x`` (array or tensor, ``(..., C, T)``)."""
        if self.is_identity:
            return x
        if hasattr(x, "index_select"):  # torch tensor: index on its own device
            import torch

            return x.index_select(-2, torch.as_tensor(self.index, device=x.device))
        return np.take(x, self.index, axis=-2)

    def __repr__(self) -> str:
        return f"ChannelMatch(n={self.index.size}, missing={self.missing}, extra={self.extra})"


def match_channels(
    expected: Sequence[str],
    given: Sequence[str],
    *,
    policy: str = "raise",
    aliases: Mapping[str, str] | None = None,
    where: str | None = None,
) -> ChannelMatch:
    """Locate every expected channel among the given ones, by name.

    Parameters
    ----------
    expected : sequence of str
        Channel names in the order the consumer (model, dataset) expects.
    given : sequence of str
        Channel names of the data at hand, in their stored order.
    policy : {"raise", "drop_extra", "intersect"}
        What to do when the sets differ (see :data:`POLICIES`).
    aliases : mapping of str to str, optional
        Explicit renames ``{given_name: expected_name}`` applied before matching (for example
        ``{"EEG Fp1": "Fp1"}``); the only way renamed channels are accepted.
    where : str, optional
        What the given channels belong to (a file or recording id), named in errors.

    Returns
    -------
    ChannelMatch
        The index mapping and what was missing or extra.

    Raises
    ------
    ChannelMismatchError
        When channels are missing (policies ``"raise"``, ``"drop_extra"``), extra (``"raise"``),
        duplicated, or when no channel matches at all; the message lists them and suggests close
        matches for likely renames.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    expected = [str(n) for n in expected]
    renamed = [str((aliases or {}).get(n, n)) for n in given]
    prefix = f"{where}: " if where else ""
    for label, names in (("expected", expected), ("given", renamed)):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ChannelMismatchError(f"{prefix}duplicate {label} channel names {dup}")
    position = {name: i for i, name in enumerate(renamed)}
    missing = [n for n in expected if n not in position]
    expected_set = set(expected)
    extra = [n for n in renamed if n not in expected_set]
    problem = bool(missing) and policy != "intersect" or bool(extra) and policy == "raise"
    kept = [n for n in expected if n in position]
    if problem or not kept:
        lines = []
        if missing:
            lines.append(f"missing {len(missing)} expected channel(s): {missing}")
        if extra and policy == "raise":
            lines.append(f"{len(extra)} unexpected channel(s): {extra}")
        hints = _rename_hints(missing, extra)
        if hints:
            lines.append("possible renames (pass aliases={given: expected}): " + hints)
        if not kept:
            lines.append("no expected channel is present")
        lines.append(f"policy={policy!r}; other policies: {[p for p in POLICIES if p != policy]}")
        raise ChannelMismatchError(prefix + "channel mismatch: " + "; ".join(lines))
    index = np.array([position[n] for n in kept], dtype=np.int64)
    return ChannelMatch(index, kept, missing if policy == "intersect" else [], extra)


def _rename_hints(missing: list[str], extra: list[str]) -> str:
    """``'given' -> 'expected'`` pairs where an extra name closely resembles a missing one."""
    pairs = []
    for name in missing:
        close = difflib.get_close_matches(name, extra, n=1, cutoff=0.6)
        if not close:
            close = [e for e in extra if name.lower() in e.lower() or e.lower() in name.lower()][:1]
        if close:
            pairs.append(f"{close[0]!r} -> {name!r}")
    return ", ".join(pairs)


def channel_vocabulary(manifest: Mapping[str, Any]) -> dict[str, int]:
    """Integer id of every channel name of a prepared dataset.

    Uses ``manifest["vocabularies"]["channel"]`` when the manifest stores one, else the sorted
    union of the channel names of all recordings (stable under re-ordering of recordings).
    """
    stored = manifest.get("vocabularies", {}).get("channel")
    if stored:
        return {str(k): int(v) for k, v in stored.items()}
    names = sorted({n for rec in manifest.get("recordings", []) for n in rec["sensors"]["names"]})
    return {name: i for i, name in enumerate(names)}
