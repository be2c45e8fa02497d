"""Split policy of ``neurofm prepare``: the ``splits`` config section and the segments it gives.

:func:`compute_splits` turns a manifest's recordings and a :class:`SplitConfig` into
``manifest["splits"]`` (split -> segments ``{"recording", "start", "stop"}``) and
``manifest["split_policy"]``; an explicit ``assign`` lists subjects / sessions / recordings per
split, otherwise the split functions of :mod:`neurofm.data.splits` draw them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from neurofm.data import splits as splitting
from neurofm.errors import ConfigError


@dataclass
class SplitConfig:
    """How recordings are split into train / val / test segments."""

    by: Literal["subject", "session", "recording", "time"] = "recording"  # split unit
    fractions: dict[str, float] = field(
        default_factory=lambda: dict(splitting.DEFAULT_FRACTIONS)
    )  # split -> share (sum 1)
    assign: dict[str, list[str]] | None = None  # split -> explicit subjects / sessions / ids
    window: float = 2.0  # longest window read later (s); time splits keep a gap >= window
    gap: float | None = None  # time left out between time splits (s); default: window
    n_blocks: int = 1  # time splits: chunks per recording, splits interleaved across chunks
    seed: int = 0  # seed of the group assignment

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise ValueError(f"window must be positive (seconds), got {self.window}")
        if self.gap is not None and self.gap < self.window:
            raise ValueError(f"gap ({self.gap} s) must be at least one window ({self.window} s)")
        if self.assign is not None and self.by == "time":
            raise ValueError("assign lists subjects / sessions / recordings; not with by: time")
        if self.n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {self.n_blocks}")


def compute_splits(
    manifest: Mapping[str, Any], policy: SplitConfig
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Split segments and the ``split_policy`` record for a manifest's recordings.

    Window and gap are given in seconds and converted with the recordings' sampling frequency
    (time splits need one sampling frequency for all recordings).
    """
    recs = manifest["recordings"]
    rates = sorted({float(r["sfreq"]) for r in recs})
    if policy.by == "time" and len(rates) > 1:
        raise ConfigError(
            f"splits.by: time splits need one sampling frequency; recordings have "
            f"{rates} Hz (add a resample step)"
        )
    sfreq = rates[-1]
    window = int(round(policy.window * sfreq))
    gap = window if policy.gap is None else int(round(policy.gap * sfreq))
    record = {
        "by": policy.by,
        "window_length": window,
        "window_s": policy.window,
        "sfreq": sfreq,
        "seed": policy.seed,
    }
    try:
        if policy.assign is not None:
            segments = _assigned(recs, policy)
            record["assign"] = {k: list(v) for k, v in policy.assign.items()}
        elif policy.by == "time":
            segments = splitting.split_by_time(
                manifest,
                window_length=window,
                fractions=policy.fractions,
                gap=gap,
                n_blocks=policy.n_blocks,
            )
            record.update(gap=gap, gap_s=gap / sfreq, n_blocks=policy.n_blocks)
        else:
            split_fn = {
                "subject": splitting.split_by_subject,
                "session": splitting.split_by_session,
                "recording": splitting.split_by_recording,
            }[policy.by]
            segments = split_fn(manifest, fractions=policy.fractions, seed=policy.seed)
        if policy.assign is None:
            record["fractions"] = dict(policy.fractions)
        splitting.check_splits(manifest, segments, by=policy.by, window_length=window)
    except splitting.SplitError as err:
        raise ConfigError(f"splits: {err}") from err
    return segments, record


def _assigned(recs: list[Mapping[str, Any]], policy: SplitConfig) -> dict[str, list[dict]]:
    """Segments from an explicit ``assign`` (split -> subjects / sessions / recording ids)."""

    def group(rec: Mapping[str, Any]) -> str:
        if policy.by == "subject":
            return str(rec.get("subject"))
        if policy.by == "session":
            return f"{rec.get('subject')}/{rec.get('session')}"
        return str(rec["id"])

    owner: dict[str, str] = {}
    for name, groups in (policy.assign or {}).items():
        for g in groups:
            if g in owner:
                raise ConfigError(
                    f"splits.assign: {policy.by} {g!r} is in both {owner[g]!r} and {name!r}"
                )
            owner[g] = name
    known = {group(r) for r in recs}
    unknown = sorted(set(owner) - known)
    unassigned = sorted(known - set(owner))
    if unknown or unassigned:
        raise ConfigError(
            [
                f"splits.assign: {policy.by} {g!r} is not in the dataset; have {sorted(known)}"
                for g in unknown
            ]
            + [f"splits.assign: {policy.by} {g!r} is in no split (list it)" for g in unassigned]
        )
    out: dict[str, list[dict]] = {name: [] for name in policy.assign or {}}
    for rec in recs:
        out[owner[group(rec)]].append(
            {"recording": rec["id"], "start": 0, "stop": int(rec["n_times"])}
        )
    return out
