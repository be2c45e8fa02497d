"""Train/validation/test splits of a prepared dataset, in the manifest's segment format.

A split maps a name to a list of segments ``{"recording": id, "start": sample, "stop": sample}``.
Splits are by subject, by session, by recording (whole recordings, groups drawn with a seed), or
by time within each recording (contiguous blocks with a gap of at least one window between blocks
of different splits). Never by shuffled overlapping windows: neighbouring windows share samples
and would leak between splits. :func:`check_splits` verifies a split before training uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from neurofm.errors import NeuroFMError

DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}

Segment = dict[str, Any]


class SplitError(NeuroFMError, ValueError):
    """Splits leak between each other or do not fit the dataset; lists every problem."""


def _recordings(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    recs = manifest.get("recordings") or []
    if not recs:
        raise SplitError("the manifest holds no recordings to split")
    return recs


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    fr = {str(k): float(v) for k, v in fractions.items()}
    if not fr or min(fr.values()) < 0 or abs(sum(fr.values()) - 1.0) > 1e-6:
        raise SplitError(f"fractions must be >= 0 and sum to 1, got {fr}")
    return fr


def _group_split(
    manifest: Mapping[str, Any],
    key: Callable[[Mapping[str, Any]], str],
    by: str,
    fractions: Mapping[str, float],
    seed: int,
) -> dict[str, list[Segment]]:
    """Assign whole groups of recordings (same ``key``) to splits, shuffled with ``seed``."""
    fr = _check_fractions(fractions)
    recs = _recordings(manifest)
    groups = sorted({key(r) for r in recs})
    wanted = [name for name, f in fr.items() if f > 0]
    if len(groups) < len(wanted):
        raise SplitError(
            f"{len(groups)} {by}(s) {groups} cannot fill the {len(wanted)} splits "
            f"{wanted} without sharing a {by}"
        )
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    counts = _allocate(len(groups), fr)
    owner: dict[str, str] = {}
    k = 0
    for name, n in counts.items():
        for group in order[k : k + n]:
            owner[group] = name
        k += n
    out: dict[str, list[Segment]] = {name: [] for name in fr}
    for rec in recs:
        out[owner[key(rec)]].append(
            {"recording": rec["id"], "start": 0, "stop": int(rec["n_times"])}
        )
    return out


def _allocate(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Integer counts summing to ``n``, close to ``n * fraction``, >= 1 where fraction > 0."""
    names = list(fractions)
    exact = np.array([n * fractions[k] for k in names])
    counts = np.floor(exact).astype(int)
    counts[(exact > 0) & (counts == 0)] = 1
    while counts.sum() > n:  # take from the largest split
        counts[int(np.argmax(counts))] -= 1
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return dict(zip(names, counts.tolist()))


def split_by_subject(
    manifest: Mapping[str, Any], *, fractions: Mapping[str, float] | None = None, seed: int = 0
) -> dict[str, list[Segment]]:
    """Every recording of a subject goes to the same split (subjects drawn with ``seed``).

    Parameters
    ----------
    manifest : dict
        A prepared store's manifest (``store.manifest``).
    fractions : mapping of str to float
        Split name -> share of subjects (default train 0.8, val 0.1, test 0.1); every split with
        a positive share gets at least one subject.
    seed : int
        Seed of the assignment.

    Returns
    -------
    dict of str to list of dict
        Segments (whole recordings) per split.
    """
    return _group_split(
        manifest, lambda r: str(r.get("subject")), "subject", fractions or DEFAULT_FRACTIONS, seed
    )


def split_by_session(
    manifest: Mapping[str, Any], *, fractions: Mapping[str, float] | None = None, seed: int = 0
) -> dict[str, list[Segment]]:
    """Every recording of a (subject, session) goes to the same split; see :func:`split_by_subject`.

    A subject may appear in several splits with different sessions.
    """
    return _group_split(manifest, _session_of, "session", fractions or DEFAULT_FRACTIONS, seed)


def split_by_recording(
    manifest: Mapping[str, Any], *, fractions: Mapping[str, float] | None = None, seed: int = 0
) -> dict[str, list[Segment]]:
    """Whole recordings assigned to splits; see :func:`split_by_subject`."""
    return _group_split(
        manifest, lambda r: str(r["id"]), "recording", fractions or DEFAULT_FRACTIONS, seed
    )


def _session_of(rec: Mapping[str, Any]) -> str:
    return f"{rec.get('subject')}/{rec.get('session')}"


def split_by_time(
    manifest: Mapping[str, Any],
    *,
    window_length: int,
    fractions: Mapping[str, float] | None = None,
    gap: int | None = None,
    n_blocks: int = 1,
) -> dict[str, list[Segment]]:
    """Contiguous blocks of time within every recording, separated by a gap.

    Each recording is cut into ``n_blocks`` equal chunks; within a chunk the splits follow in
    the order of ``fractions`` (train, then val, then test), with lengths proportional to their
    fractions, and ``gap`` samples left out between two neighbouring blocks of different splits.
    ``n_blocks=1`` keeps the test data at the end of each recording (no future leaks into
    training); more blocks interleave the splits to follow slow drifts.

    Parameters
    ----------
    manifest : dict
        A prepared store's manifest.
    window_length : int
        The longest window (span, including any target) that will be read, in samples.
    fractions : mapping of str to float
        Split name -> share of time (default train 0.8, val 0.1, test 0.1).
    gap : int, optional
        Samples left out between blocks of different splits (default and minimum:
        ``window_length``).
    n_blocks : int
        Chunks per recording.

    Returns
    -------
    dict of str to list of dict
        Segments per split. The split is fully determined by its arguments (no randomness).

    Raises
    ------
    SplitError
        When ``gap < window_length`` or a recording is too short for a window in every block.
    """
    fr = _check_fractions(fractions or DEFAULT_FRACTIONS)
    gap = window_length if gap is None else int(gap)
    if window_length < 1 or gap < window_length or n_blocks < 1:
        raise SplitError(
            f"need window_length >= 1, gap >= window_length and n_blocks >= 1, got "
            f"window_length={window_length}, gap={gap}, n_blocks={n_blocks}"
        )
    names = [k for k, f in fr.items() if f > 0]
    blocks = [name for _ in range(n_blocks) for name in names]  # in time order
    n_gaps = sum(a != b for a, b in zip(blocks, blocks[1:]))
    out: dict[str, list[Segment]] = {name: [] for name in fr}
    problems = []
    for rec in _recordings(manifest):
        usable = int(rec["n_times"]) - gap * n_gaps
        ends = np.cumsum([fr[name] / n_blocks for name in blocks]) * usable
        start, shift = 0, 0
        for k, name in enumerate(blocks):
            if k and name != blocks[k - 1]:
                shift += gap
                start += gap
            stop = int(round(ends[k])) + shift
            if stop - start < window_length:
                problems.append(
                    f"{rec['id']}: block {k} of split {name!r} has {stop - start} "
                    f"samples, fewer than a window of {window_length}"
                )
            elif (
                out[name]
                and out[name][-1]["recording"] == rec["id"]
                and out[name][-1]["stop"] == start
            ):
                out[name][-1]["stop"] = stop
            else:
                out[name].append({"recording": rec["id"], "start": start, "stop": stop})
            start = stop
    if problems:
        raise SplitError("split_by_time: recordings too short:\n  " + "\n  ".join(problems))
    return out


def check_splits(
    manifest: Mapping[str, Any],
    splits: Mapping[str, Sequence[Segment]] | None = None,
    *,
    by: str | None = None,
    window_length: int = 1,
) -> None:
    """Raise :class:`SplitError` listing every leak between splits.

    Checks that segments lie inside their recordings; that no sample belongs to two splits; that
    two segments of different splits in one recording are at least ``window_length`` samples
    apart (no window can straddle a split boundary); and, for ``by="subject"`` / ``"session"`` /
    ``"recording"``, that no subject / (subject, session) / recording is in two splits.

    Parameters
    ----------
    manifest : dict
        The manifest; its ``splits`` and ``split_policy["by"]`` are used unless given.
    splits : mapping, optional
        Split name -> segments (default ``manifest["splits"]``).
    by : {"subject", "session", "recording", "time"}, optional
        The grouping to verify (default ``manifest["split_policy"]["by"]``, else only overlaps).
    window_length : int
        The longest window that will be read, in samples.
    """
    splits = manifest.get("splits", {}) if splits is None else splits
    by = by if by is not None else (manifest.get("split_policy") or {}).get("by")
    recs = {r["id"]: r for r in _recordings(manifest)}
    group_key = {
        "subject": lambda r: str(r.get("subject")),
        "session": _session_of,
        "recording": lambda r: str(r["id"]),
    }
    if by is not None and by not in (*group_key, "time"):
        raise SplitError(f"by must be one of {(*group_key, 'time')}, got {by!r}")
    problems: list[str] = []
    per_rec: dict[str, list[tuple[int, int, str]]] = {}
    for name, segs in splits.items():
        for seg in segs:
            rid, start, stop = seg["recording"], int(seg["start"]), int(seg["stop"])
            if rid not in recs:
                problems.append(f"split {name!r}: unknown recording {rid!r}")
            elif not 0 <= start < stop <= int(recs[rid]["n_times"]):
                problems.append(
                    f"split {name!r}: segment [{start}, {stop}) outside {rid!r} "
                    f"(0..{recs[rid]['n_times']})"
                )
            else:
                per_rec.setdefault(rid, []).append((start, stop, name))
    for rid, segs in per_rec.items():
        segs.sort()
        for (s0, e0, n0), (s1, e1, n1) in zip(segs, segs[1:]):
            if s1 < e0:
                problems.append(
                    f"{rid!r}: segments of {n0!r} [{s0}, {e0}) and {n1!r} [{s1}, {e1}) overlap"
                )
            elif n0 != n1 and s1 - e0 < window_length:
                problems.append(
                    f"{rid!r}: only {s1 - e0} samples between {n0!r} (ends {e0}) and "
                    f"{n1!r} (starts {s1}); a window of {window_length} needs a gap"
                )
    if by in group_key:
        owners: dict[str, set[str]] = {}
        for rid, segs in per_rec.items():
            owners.setdefault(group_key[by](recs[rid]), set()).update(n for _, _, n in segs)
        for group, names in sorted(owners.items()):
            if len(names) > 1:
                problems.append(f"{by} {group!r} is in several splits: {sorted(names)}")
    if problems:
        raise SplitError(f"{len(problems)} split problem(s):\n  " + "\n  ".join(problems))


def save_splits(
    store: Any,
    splits: Mapping[str, Sequence[Segment]],
    *,
    by: str,
    window_length: int = 1,
    policy: Mapping[str, Any] | None = None,
) -> None:
    """Check ``splits`` and write them with ``split_policy`` into the store's manifest.

    ``policy`` holds the other arguments that made the split (seed, fractions, ...), recorded as
    ``manifest["split_policy"] = {"by": by, "window_length": window_length,
                                     **(policy or {})}``.
    """
    check_splits(store.manifest, splits, by=by, window_length=window_length)
    store.manifest["splits"] = {k: [dict(s) for s in v] for k, v in splits.items()}
    store.manifest["split_policy"] = {"by": by, "window_length": window_length, **(policy or {})}
    store.save_manifest()
