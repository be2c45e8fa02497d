"""Train/validation/test splits of text segments by subject, by story or passage, or by both.

Whole subjects and whole stories (or passages: the parts of a story played as one sound file,
``TextSegment.passage``) are assigned to splits, drawn with a seed; segments are never
shuffled between splits (neighbouring segments share context and, with overlapping windows,
samples). ``by="subject_story"`` holds out subjects *and* stories: a test segment comes from a
test subject listening to a test story; segments whose subject and story fall in different
splits belong to no split and are returned under ``"excluded"`` (counted, never hidden).
``"passage"`` and ``"subject_passage"`` do the same with passages in place of stories: with few
stories (two in the shipped MEG-MASC events) they give a held-out test passage that no training
segment heard, though the characters and vocabulary of its story were heard in other passages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from neurofm.data.splits import SplitError

SPLIT_NAMES = ("train", "val", "test")
SPLIT_BY = ("subject", "story", "passage", "subject_story", "subject_passage")

Amount = float | int | Sequence[str]
"""How many groups a split gets: a fraction in [0, 1) of the groups (rounded, at least one when
above zero), a count, or the group names themselves."""


def _assign(groups: list[str], val: Amount, test: Amount, seed: int, what: str) -> dict[str, str]:
    """Group -> split name. Named groups go where they are named; the others are drawn."""
    named: dict[str, str] = {}
    counts: dict[str, int] = {}
    for split, amount in (("test", test), ("val", val)):
        if isinstance(amount, str) or (
            isinstance(amount, Sequence) and not isinstance(amount, str)
        ):
            names = [amount] if isinstance(amount, str) else [str(a) for a in amount]
            unknown = sorted(set(names) - set(groups))
            if unknown:
                raise SplitError(f"{split}: {what}(s) {unknown} not among {groups}")
            clash = sorted(set(names) & set(named))
            if clash:
                raise SplitError(f"{what}(s) {clash} named for both val and test")
            named.update({n: split for n in names})
            counts[split] = 0
        elif isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise SplitError(f"{split}={amount!r}: give a fraction, a count or {what} names")
        elif isinstance(amount, float) and amount < 1:
            counts[split] = max(1, round(amount * len(groups))) if amount > 0 else 0
        else:
            if float(amount) != int(amount):
                raise SplitError(f"{split}={amount!r}: a count must be a whole number")
            counts[split] = int(amount)
    free = [g for g in groups if g not in named]
    order = [free[i] for i in np.random.default_rng(seed).permutation(len(free))]
    if counts["test"] + counts["val"] >= len(free) and counts["test"] + counts["val"] > 0:
        raise SplitError(
            f"{len(groups)} {what}(s) {groups} cannot give {counts['test']} test and "
            f"{counts['val']} val {what}(s) and keep one for train"
        )
    out = dict(named)
    out.update({g: "test" for g in order[: counts["test"]]})
    out.update({g: "val" for g in order[counts["test"] : counts["test"] + counts["val"]]})
    out.update({g: "train" for g in order[counts["test"] + counts["val"] :]})
    return out


def _by_axis(amount: Amount, subjects: list[str], stories: list[str]) -> tuple[Amount, Amount]:
    """For ``subject_story``: named groups split into (subject names, story names); a fraction
    or count applies to both."""
    if isinstance(amount, int | float) and not isinstance(amount, bool):
        return amount, amount
    names = [amount] if isinstance(amount, str) else [str(a) for a in amount]
    unknown = sorted(set(names) - set(subjects) - set(stories))
    if unknown:
        raise SplitError(f"{unknown} are neither subjects {subjects} nor stories {stories}")
    return [n for n in names if n in subjects], [n for n in names if n in stories]


def _requested(amount: Amount) -> bool:
    if isinstance(amount, str):
        return True
    if isinstance(amount, Sequence):
        return len(amount) > 0
    return amount > 0


def split_segments(
    segments: Sequence[Any],
    *,
    by: Literal["subject", "story", "passage", "subject_story", "subject_passage"] = "subject",
    val: Amount = 1,
    test: Amount = 1,
    seed: int = 0,
) -> dict[str, list[Any]]:
    """Split text segments by whole subjects, whole stories or passages, or both.

    Parameters
    ----------
    segments : sequence of TextSegment
        Anything with ``subject`` and ``story`` attributes (and ``passage`` for the passage
        splits; an empty or missing passage counts as the story).
    by : {"subject", "story", "passage", "subject_story", "subject_passage"}
        What is held out. ``"subject_story"`` holds out subjects and stories at once (each
        drawn with ``val``/``test``; stories with ``seed + 1``); the ``passage`` variants use
        passages (``story/sound_id``) as the groups in place of stories.
    val, test : float, int or sequence of str
        A fraction in [0, 1) of the groups (at least one when above zero), a count of groups, or
        the group names (for ``"subject_story"`` subject and story names together, e.g.
        ``["01", "lw1"]``). ``0`` leaves that split empty on purpose.
    seed : int
        Draws which groups go where (the same seed gives the same split).

    Returns
    -------
    dict
        ``train``, ``val``, ``test``: segments in their input order; ``excluded``: segments of
        ``"subject_story"`` whose subject and story are in different splits (empty otherwise).

    Raises
    ------
    SplitError
        Too few groups, unknown names, or a split that was asked for (or train) ending empty.
    """
    if by not in SPLIT_BY:
        raise SplitError(f"by={by!r}; allowed: {', '.join(map(repr, SPLIT_BY))}")
    if not len(segments):
        raise SplitError("no segments to split")
    group_of = _passage if by.endswith("passage") else (lambda s: str(s.story))
    subjects = sorted({str(s.subject) for s in segments})
    stories = sorted({group_of(s) for s in segments})
    what = "passage" if by.endswith("passage") else "story"
    subject_split = story_split = None
    if by.startswith("subject_"):
        val_names, test_names = (_by_axis(a, subjects, stories) for a in (val, test))
        subject_split = _assign(subjects, val_names[0], test_names[0], seed, "subject")
        story_split = _assign(stories, val_names[1], test_names[1], seed + 1, what)
    elif by == "subject":
        subject_split = _assign(subjects, val, test, seed, "subject")
    else:
        story_split = _assign(stories, val, test, seed, what)
    out: dict[str, list[Any]] = {name: [] for name in (*SPLIT_NAMES, "excluded")}
    for segment in segments:
        places = []
        if subject_split is not None:
            places.append(subject_split[str(segment.subject)])
        if story_split is not None:
            places.append(story_split[group_of(segment)])
        out[places[0] if len(set(places)) == 1 else "excluded"].append(segment)
    wanted = ["train"] + [name for name, a in (("val", val), ("test", test)) if _requested(a)]
    empty = [name for name in wanted if not out[name]]
    if empty:
        raise SplitError(
            f"split(s) {empty} would be empty (by={by!r}, subjects {subjects}, {what} groups "
            f"{stories}, "
            f"{len(out['excluded'])} segment(s) excluded)"
        )
    return out


def _passage(segment: Any) -> str:
    """The segment's passage, or its story when it names none."""
    return str(getattr(segment, "passage", "") or segment.story)
