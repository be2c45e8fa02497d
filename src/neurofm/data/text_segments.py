"""(MEG segment, text) pairs cut from recordings whose events carry words.

A recording read from a MEG-MASC-like BIDS tree (``read_bids``) has one event per word
(description ``"word"``) whose payload holds the word (``word``), the story (``story``) and the
sentence or word list it belongs to (``sequence_id``, with ``condition`` ``sentence`` or
``word_list``). :func:`segment_recording` groups consecutive words into segments, either
fixed-length word windows or sentences, and cuts the signal under them; :func:`split_segments`
splits segments by subject, by story or by both (never by shuffled segments);
:class:`TextSegmentDataset` and :func:`collate_text_segments` serve them as
:class:`~neurofm.types.Batch` of input kind ``"signal_text"``.

Nothing is dropped silently: a segment whose signal would run outside the recording raises,
unless ``drop_incomplete=True`` is passed, and then it is counted in the ``summary``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from neurofm.data.recording import Recording
from neurofm.data.text_dataset import TextSegmentDataset, collate_text_segments
from neurofm.data.text_split import split_segments
from neurofm.errors import RecordingError
from neurofm.logging import get_logger

__all__ = [
    "SENTENCE_END",
    "TextSegment",
    "TextSegmentDataset",
    "collate_text_segments",
    "read_text_segments",
    "segment_recording",
    "split_segments",
]

SENTENCE_END = (".", "!", "?")
"""Word endings that close a sentence when the events carry no ``sequence_id``."""

_log = get_logger(__name__)


@dataclass
class TextSegment:
    """One signal segment and the words heard during it.

    Attributes
    ----------
    signal : ndarray, shape (C, T), float32
        The recording's samples under the segment, in its physical units.
    text : str
        The words joined by single spaces.
    words : list of str
        The words in order.
    subject, session, story : str
        Who listened, in which session, to which story ("" when unknown).
    onset : float
        Start of the segment in seconds from the recording's first sample.
    duration : float
        Length of the segment in seconds (``T / sfreq``).
    sfreq : float
        Sampling rate in Hz.
    source : str
        The file the recording was read from.
    passage : str
        The part of the story heard without a break: ``story/sound_id`` (MEG-MASC plays each
        story as several sound files) when the events name the sound, else the story.
    meta : dict
        ``word_onsets`` (s, from the segment's start), ``sequence_ids`` and ``conditions`` of the
        words when the events give them.
    """

    signal: np.ndarray
    text: str
    words: list[str]
    subject: str
    session: str
    story: str
    onset: float
    duration: float
    sfreq: float
    source: str
    passage: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``sub-01 ses-0 story 'lw1' at 23.506 s (file ...)``: names the segment in errors."""
        return (
            f"sub-{self.subject} ses-{self.session} story {self.story!r} at {self.onset:.3f} s "
            f"(file {self.source!r})"
        )


@dataclass
class _Word:
    onset: float
    duration: float
    text: str
    story: str
    passage: str
    sequence: Any
    condition: str | None


def _words(recording: Recording, description: str) -> list[_Word]:
    """The word events of ``recording`` in time order."""
    events = recording.events
    path = recording.source.get("path")
    words = []
    for i in np.argsort(events.onset, kind="stable"):
        if events.description[i] != description:
            continue
        payload = events.payload[i]
        text = payload.get("word")
        if text is None or str(text).strip() == "":
            raise RecordingError(
                f"{description!r} event {i} at {events.onset[i]:g} s has no 'word' in its payload "
                f"(payload keys: {sorted(payload)})",
                path=path,
            )
        story = str(payload.get("story", recording.task or ""))
        sound = payload.get("sound_id", payload.get("sound"))
        words.append(
            _Word(
                onset=float(events.onset[i]),
                duration=float(events.duration[i]),
                text=str(text).strip(),
                story=story,
                passage=story if sound is None else f"{story}/{_sound_name(sound)}",
                sequence=payload.get("sequence_id"),
                condition=payload.get("condition"),
            )
        )
    if not words:
        raise RecordingError(
            f"no {description!r} events (events by description: {events.counts()})", path=path
        )
    return words


def _sentence_starts(words: list[_Word]) -> np.ndarray:
    """Boolean per word: a new sentence (or story, or passage) starts here.

    With ``sequence_id`` in every payload a change of it (or of the story) starts a sentence;
    otherwise a word after one ending in ``.``, ``!`` or ``?`` does (MEG-MASC's real events carry
    ``sequence_id``; punctuation is the fallback for tables without it).
    """
    use_ids = all(w.sequence is not None for w in words)
    starts = np.zeros(len(words), dtype=bool)
    starts[0] = True
    for k in range(1, len(words)):
        prev, word = words[k - 1], words[k]
        if word.story != prev.story or word.passage != prev.passage:
            starts[k] = True
        elif use_ids:
            starts[k] = word.sequence != prev.sequence
        else:
            starts[k] = prev.text.endswith(SENTENCE_END)
    return starts


def segment_recording(
    recording: Recording,
    *,
    mode: Literal["words", "sentences"] = "words",
    words_per_segment: int = 8,
    stride_words: int | None = None,
    max_seconds: float | None = None,
    window_seconds: float | None = None,
    pre: float = 0.0,
    post: float = 0.5,
    word_description: str = "word",
    drop_incomplete: bool = False,
    summary: dict[str, Any] | None = None,
) -> list[TextSegment]:
    """Cut (signal, text) segments from a recording whose events carry words.

    Parameters
    ----------
    recording : Recording
        Events with description ``word_description`` and a ``word`` in each payload (``story``,
        ``sequence_id`` and ``condition`` used when present), e.g. a MEG-MASC BIDS recording.
    mode : {"words", "sentences"}
        ``"words"``: windows of ``words_per_segment`` consecutive words (crossing sentences,
        never stories). ``"sentences"``: one segment per sentence (``sequence_id``; see
        :func:`_sentence_starts` for the fallback).
    words_per_segment : int
        Words per window in ``"words"`` mode; the last window of a story may hold fewer.
    stride_words : int, optional
        Words between window starts (default ``words_per_segment``: no overlap).
    max_seconds : float, optional
        Longest segment (s, default 10 when ``window_seconds`` is not given). A window or
        sentence that would be longer is cut before the word that would pass it; the rest of
        its words start the next segment (nothing is left out).
    window_seconds : float, optional
        Fixed-length segments (s) starting ``pre`` before the first word, so that every segment
        has the same ``T`` and batches stack; words are taken while they end (``+ post``)
        inside the window. Give either this or ``max_seconds``.
    pre, post : float
        Signal kept before the first word's onset and after the last word's offset (s).
    word_description : str
        The description of word events.
    drop_incomplete : bool
        Leave out segments whose signal would start before or end after the recording (counted
        in ``summary``) instead of raising.
    summary : dict, optional
        Filled with ``n_words``, ``n_segments``, ``n_dropped_incomplete`` and ``dropped``
        (``[{"onset", "words", "reason"}]``).

    Returns
    -------
    list of TextSegment
        In time order.

    Raises
    ------
    RecordingError
        No word events, a word without text, or (unless ``drop_incomplete``) a segment outside
        the recording; the message names the file and the segment's onset.
    ValueError
        Bad arguments.
    """
    if mode not in ("words", "sentences"):
        raise ValueError(f"segment_recording: mode={mode!r}; allowed: 'words', 'sentences'")
    if words_per_segment < 1 or (stride_words is not None and stride_words < 1):
        raise ValueError(
            f"segment_recording: words_per_segment ({words_per_segment}) and stride_words "
            f"({stride_words}) must be >= 1"
        )
    if window_seconds is not None and max_seconds is not None:
        raise ValueError("segment_recording: give window_seconds or max_seconds, not both")
    limit = window_seconds if window_seconds is not None else (max_seconds or 10.0)
    if limit <= 0 or pre < 0 or post < 0:
        raise ValueError(
            f"segment_recording: need a positive segment length ({limit}) and pre, post >= 0 "
            f"(got {pre}, {post})"
        )
    path = str(recording.source.get("path", ""))
    words = _words(recording, word_description)
    groups = _group(words, mode, words_per_segment, stride_words, limit, pre, post, path)
    segments, dropped = [], []
    n_fixed = None if window_seconds is None else int(round(window_seconds * recording.sfreq))
    for group in groups:
        first, last = words[group[0]], words[group[-1]]
        start = int(round((first.onset - pre) * recording.sfreq))
        if n_fixed is None:
            stop = int(round((last.onset + last.duration + post) * recording.sfreq))
        else:
            stop = start + n_fixed
        text = " ".join(words[k].text for k in group)
        if start < 0 or stop > recording.n_times:
            reason = (
                f"segment [{start / recording.sfreq:.3f}, {stop / recording.sfreq:.3f}) s runs "
                f"outside the recording's {recording.duration:.3f} s"
            )
            if not drop_incomplete:
                raise RecordingError(
                    f"the segment of the words at {first.onset:.3f} s ({text[:40]!r}): {reason}; "
                    "pass drop_incomplete=True to leave such segments out (they are counted)",
                    path=path,
                )
            dropped.append({"onset": first.onset, "words": text, "reason": reason})
            continue
        onset = start / recording.sfreq
        segments.append(
            TextSegment(
                signal=np.asarray(recording.get_data(start, stop), dtype=np.float32),
                text=text,
                words=[words[k].text for k in group],
                subject=str(recording.subject or ""),
                session=str(recording.session or ""),
                story=first.story,
                passage=first.passage,
                onset=onset,
                duration=(stop - start) / recording.sfreq,
                sfreq=recording.sfreq,
                source=path,
                meta={
                    "word_onsets": [words[k].onset - onset for k in group],
                    "sequence_ids": [words[k].sequence for k in group],
                    "conditions": [words[k].condition for k in group],
                },
            )
        )
    if dropped:
        _log.warning(
            "%s: %d of %d segments ran outside the recording and were left out",
            path,
            len(dropped),
            len(groups),
        )
    if summary is not None:
        summary.update(
            n_words=len(words),
            n_segments=len(segments),
            n_dropped_incomplete=len(dropped),
            dropped=dropped,
        )
    return segments


def _group(
    words: list[_Word],
    mode: str,
    words_per_segment: int,
    stride_words: int | None,
    limit: float,
    pre: float,
    post: float,
    path: str,
) -> list[list[int]]:
    """Word indices of each segment: runs of words within one story (one sentence in
    ``"sentences"`` mode; one passage, i.e. one sound file, in either mode) whose span ``pre + (last offset - first onset) + post`` fits ``limit``."""
    boundary = _sentence_starts(words) if mode == "sentences" else _story_starts(words)
    count = len(words) if mode == "sentences" else words_per_segment
    edges = [*np.flatnonzero(boundary).tolist(), len(words)]
    groups = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        start = lo
        while start < hi:
            end = start
            while end < hi and end - start < count:
                span = pre + words[end].onset + words[end].duration + post - words[start].onset
                if span > limit:
                    break
                end += 1
            if end == start:
                raise RecordingError(
                    f"the word {words[start].text!r} at {words[start].onset:.3f} s with "
                    f"pre/post does not fit in a {limit:g} s segment; raise the segment length",
                    path=path,
                )
            groups.append(list(range(start, end)))
            if end == hi:
                break
            step = end - start if stride_words is None else min(stride_words, end - start)
            start += step
    return groups


def _story_starts(words: list[_Word]) -> np.ndarray:
    """Boolean per word: a new story or passage (sound file) starts here."""
    return np.array(
        [
            k == 0 or w.story != words[k - 1].story or w.passage != words[k - 1].passage
            for k, w in enumerate(words)
        ]
    )


def _sound_name(sound: Any) -> str:
    """``2`` for a ``sound_id`` of 2 (or 2.0 or "2"); the file stem for a sound path."""
    text = str(sound).strip()
    try:
        number = float(text)
    except ValueError:
        return Path(text).stem
    return str(int(number)) if number.is_integer() else text


def read_text_segments(
    root: str | Path,
    *,
    subjects: Sequence[str] | None = None,
    preload: bool = True,
    **options: Any,
) -> list[TextSegment]:
    """Segments of every recording with a signal file in a BIDS tree.

    Parameters
    ----------
    root : path
        The BIDS root (e.g. one written by :func:`neurofm.data.synthetic_masc.make_masc_like`).
    subjects : sequence of str, optional
        Only these subjects (labels without ``sub-``).
    preload : bool
        Read each signal into memory before cutting (faster for many segments).
    **options
        Keyword arguments of :func:`segment_recording` (``mode``, ``window_seconds``, ...).

    Returns
    -------
    list of TextSegment
        Recordings in sorted entity order, segments in time order within each.
    """
    from neurofm.io.bids import find_bids_recordings
    from neurofm.io.reader import read_bids

    entries = find_bids_recordings(root)
    out: list[TextSegment] = []
    n_read = 0
    for entry in entries:
        if subjects is not None and entry["subject"] not in subjects:
            continue
        try:
            recording = read_bids(root, **entry, preload=preload)
        except RecordingError as err:
            if "no signal file" in str(err):
                continue
            raise
        n_read += 1
        out.extend(segment_recording(recording, **options))
    if n_read == 0:
        raise RecordingError(
            f"no recording with a signal file (subjects {subjects})", path=str(root)
        )
    return out
