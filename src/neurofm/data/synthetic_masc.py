"""A MEG-MASC-like BIDS dataset: the real word onsets of MEG-MASC with synthetic MEG.

No MEG-MASC signal ships with neurofm, but its events do (word and phoneme onsets of the
stories, ``sequence_id`` of each sentence). :func:`make_masc_like` writes a BIDS tree laid out
as MEG-MASC (``sub-XX/ses-Y/meg/sub-XX_ses-Y_task-Z_meg.fif`` with ``_events.tsv``,
``_channels.tsv``, ``_meg.json``, ``dataset_description.json``, ``participants.tsv``) whose
events are the real ones, copied, and whose signal is built as follows.

Every word evokes a response ``A_s @ (f(word) * h)``: ``f(word)`` holds a constant (the generic
evoked response to any word onset), the word's length and a frequency proxy (log count of the
word in the source events), both z-scored, and a fixed random embedding of the word type (drawn
from a hash of the lower-cased word and the seed); ``h`` gives each feature its own temporal
bump (latency 80-500 ms, 30-100 ms wide); ``A_s`` projects the features to the sensors, shared
by all subjects up to a subject-specific perturbation. The responses of overlapping words add.
The background is 1/f noise, independent per channel. ``snr`` is the ratio of the RMS of the
word responses to the RMS of the background over the whole recording; the sum is scaled to
about 100 fT.

``related=False`` writes the twin: the same noise and spatial patterns, but each event's
response is that of another word type drawn at random (per subject and event), so the signal
says when a word was heard but nothing about which. Word timing is real and identical across
subjects, so a split by subject alone lets a model recognise a passage of a story it was trained
on from the rhythm of the onsets; hold out stories (``split_segments(by="story")`` or
``"subject_story"``) to measure decoding of words rather than recall of passages.

``max_seconds`` shortens each recording; events that do not end inside it are left out of the
written ``events.tsv`` and counted in ``synthetic.json`` (with every generator setting).
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.data._masc_bids import read_table, write_root, write_sidecars, write_table
from neurofm.errors import RecordingError

SUBJECT_VARIABILITY = 0.3
"""Scale of each subject's perturbation of the shared spatial patterns (relative to them)."""
KERNEL_SECONDS = 0.8
"""Length of every word response (s)."""
AMPLITUDE = 1e-13
"""Background RMS in T (100 fT, the order of MEG)."""


def _source_recordings(events_root: Path, stories: list[str] | None) -> list[dict[str, Any]]:
    """The recordings of the source tree with an events table, their story and sidecars."""
    from neurofm.io.bids import bids_prefix, find_bids_recordings

    out = []
    entries = find_bids_recordings(events_root)
    first = min((e["subject"] for e in entries), default=None)
    for entry in entries:
        if entry["subject"] != first:
            continue
        folder = events_root / f"sub-{entry['subject']}"
        if entry["session"]:
            folder = folder / f"ses-{entry['session']}"
        folder = folder / str(entry["datatype"])
        prefix = bids_prefix(entry["subject"], entry["session"], entry["task"], entry["run"])
        events = folder / f"{prefix}_events.tsv"
        if not events.is_file():
            continue
        columns, rows = read_table(events)
        words = [r for r in rows if r.get("trial_type") == "word" and r.get("word")]
        if not words or "onset" not in columns:
            raise RecordingError("no word rows with an onset in the events table", path=str(events))
        story = words[0].get("story") or entry["task"]
        if stories is not None and story not in stories:
            continue
        out.append(
            {
                **entry,
                "prefix": prefix,
                "folder": folder,
                "story": story,
                "columns": columns,
                "rows": rows,
            }
        )
    found = sorted({r["story"] for r in out})
    if not out or (stories is not None and set(stories) - set(found)):
        raise RecordingError(
            f"stories {stories} not found; events tables with words give {found}",
            path=str(events_root),
        )
    return out


def _channel_rows(sources: list[dict[str, Any]], n_channels: int) -> list[dict[str, str]]:
    """The first ``n_channels`` MEG rows of a source channels table (names ``MEG 001``...)."""
    for source in sources:
        path = source["folder"] / f"{source['prefix']}_channels.tsv"
        if path.is_file():
            _, rows = read_table(path)
            meg = [r for r in rows if r.get("type", "").upper().startswith("MEGGRAD")]
            if len(meg) < n_channels:
                raise RecordingError(
                    f"n_channels={n_channels} but the table has {len(meg)} MEG channels",
                    path=str(path),
                )
            return meg[:n_channels]
    return [
        {"name": f"MEG {i + 1:03d}", "type": "MEGGRADAXIAL", "units": "T"}
        for i in range(n_channels)
    ]


def word_embedding(word: str, dim: int, seed: int) -> np.ndarray:
    """The fixed random embedding (dim,) of a word type (case-insensitive), from ``seed``."""
    key = zlib.crc32(word.lower().encode("utf-8"))
    return np.random.default_rng([seed, key]).standard_normal(dim)


def _kernels(n_features: int, sfreq: float, rng: np.random.Generator) -> np.ndarray:
    """(F, K) temporal bump of each feature's response."""
    t = np.arange(int(round(KERNEL_SECONDS * sfreq))) / sfreq
    latency = rng.uniform(0.08, 0.5, n_features)
    width = rng.uniform(0.03, 0.1, n_features)
    return np.exp(-0.5 * ((t[None, :] - latency[:, None]) / width[:, None]) ** 2)


def _pink_noise(n_channels: int, n_times: int, rng: np.random.Generator) -> np.ndarray:
    """(C, T) noise with a 1/f power spectrum, unit RMS per channel."""
    spectrum = np.fft.rfft(rng.standard_normal((n_channels, n_times)), axis=1)
    freqs = np.arange(spectrum.shape[1], dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n=n_times, axis=1)
    noise -= noise.mean(axis=1, keepdims=True)
    return noise / noise.std(axis=1, keepdims=True)


def _features(
    words: list[str], counts: dict[str, int], embedding_dim: int, seed: int
) -> np.ndarray:
    """(n_words, F) features: constant, length and log frequency (z-scored over every word
    token of the source events), embedding."""
    tokens = [w for w, n in counts.items() for _ in range(n)]
    columns = [np.ones(len(words))]
    for measure in (len, lambda w: np.log1p(counts[w.lower()])):
        reference = np.array([measure(w) for w in tokens], dtype=np.float64)
        values = np.array([measure(w) for w in words], dtype=np.float64)
        columns.append((values - reference.mean()) / (reference.std() or 1.0))
    embedding = np.stack([word_embedding(w, embedding_dim, seed) for w in words])
    return np.concatenate([np.stack(columns, axis=1), embedding], axis=1)


def _signal(
    onsets: np.ndarray,
    features: np.ndarray,
    n_times: int,
    sfreq: float,
    mixing: np.ndarray,
    kernels: np.ndarray,
    snr: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """(C, T) float32 signal in T: word responses at ``onsets`` (s) plus 1/f background."""
    impulses = np.zeros((features.shape[1], n_times))
    samples = np.round(onsets * sfreq).astype(int)
    np.add.at(impulses.T, samples, features)
    latent = np.stack([np.convolve(i, k)[:n_times] for i, k in zip(impulses, kernels)])
    evoked = mixing @ latent  # (C, T)
    noise = _pink_noise(mixing.shape[0], n_times, rng)
    rms = float(np.sqrt(np.mean(evoked**2))) or 1.0
    return ((evoked * (snr / rms) + noise) * AMPLITUDE).astype(np.float32)


def make_masc_like(
    out_dir: str | Path,
    *,
    events_root: str | Path,
    n_subjects: int = 2,
    stories: list[str] | None = None,
    sfreq: float = 100.0,
    n_channels: int = 208,
    snr: float = 1.0,
    related: bool = True,
    embedding_dim: int = 16,
    seed: int = 0,
    max_seconds: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a MEG-MASC-like BIDS tree with the real word onsets and synthetic MEG.

    Parameters
    ----------
    out_dir : path
        The BIDS root to write (must be absent or empty unless ``overwrite``).
    events_root : path
        A MEG-MASC BIDS tree with ``events.tsv`` (and ideally ``channels.tsv`` and
        ``*_meg.json``) files; its first subject's recordings give the stories and onsets.
    n_subjects : int
        Synthetic subjects (``sub-01``...), each hearing every story with the same onsets.
    stories : list of str, optional
        Only these stories (the ``story`` column, e.g. ``["lw1"]``); default all.
    sfreq : float
        Sampling rate of the written signal (Hz; MEG-MASC's is 1000).
    n_channels : int
        MEG channels (MEG-MASC's KIT system has 208), named as in the source channels table.
    snr : float
        RMS of the word responses over RMS of the background (whole recording).
    related : bool
        Responses depend on the heard word (True) or on a random other word (the twin).
    embedding_dim : int
        Size of the random word embedding among the response features.
    seed : int
        Everything random (spatial patterns, kernels, embeddings, noise) follows from it.
    max_seconds : float, optional
        Shorten each recording to this length (events not ending inside it are left out and
        counted in ``synthetic.json``).
    overwrite : bool
        Replace an existing non-empty ``out_dir``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    import mne

    from neurofm import __version__

    if n_subjects < 1 or n_channels < 1 or sfreq <= 0 or snr < 0 or embedding_dim < 0:
        raise ValueError(
            f"make_masc_like: need n_subjects, n_channels >= 1, sfreq > 0, snr >= 0, "
            f"embedding_dim >= 0 (got {n_subjects}, {n_channels}, {sfreq}, {snr}, {embedding_dim})"
        )
    events_root, out = Path(events_root), Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise RecordingError("output folder is not empty; pass overwrite=True", path=str(out))
        shutil.rmtree(out)
    sources = _source_recordings(events_root, stories)
    channels = _channel_rows(sources, n_channels)
    counts: dict[str, int] = {}
    for source in sources:
        for row in source["rows"]:
            if row.get("trial_type") == "word" and row.get("word"):
                counts[row["word"].lower()] = counts.get(row["word"].lower(), 0) + 1
    vocabulary = sorted(counts)
    n_features = 3 + embedding_dim
    rng = np.random.default_rng([seed, 0])
    base_mixing = rng.standard_normal((n_channels, n_features)) / np.sqrt(n_features)
    kernels = _kernels(n_features, sfreq, rng)
    summary: dict[str, Any] = {
        "generator": "neurofm.data.synthetic_masc.make_masc_like",
        "version": __version__,
        "settings": {
            "n_subjects": n_subjects,
            "stories": sorted({s["story"] for s in sources}),
            "sfreq": sfreq,
            "n_channels": n_channels,
            "snr": snr,
            "related": related,
            "embedding_dim": embedding_dim,
            "seed": seed,
            "max_seconds": max_seconds,
        },
        "recordings": [],
    }
    out.mkdir(parents=True, exist_ok=True)
    for s in range(n_subjects):
        subject = f"{s + 1:02d}"
        subject_rng = np.random.default_rng([seed, 1, s])
        mixing = base_mixing + SUBJECT_VARIABILITY * subject_rng.standard_normal(
            base_mixing.shape
        ) / np.sqrt(n_features)
        scans: dict[str, list[str]] = {}
        for r, source in enumerate(sources):
            duration = _duration(source, max_seconds)
            n_times = int(round(duration * sfreq))
            duration = n_times / sfreq
            kept = [
                row
                for row in source["rows"]
                if float(row["onset"]) + _float(row.get("duration")) <= duration
                and float(row["onset"]) * sfreq < n_times
            ]
            words = [row for row in kept if row.get("trial_type") == "word" and row.get("word")]
            heard = [row["word"] for row in words]
            if not heard:
                raise RecordingError(
                    f"max_seconds={max_seconds} leaves no word of story {source['story']!r}",
                    path=str(source["folder"] / f"{source['prefix']}_events.tsv"),
                )
            if related:
                shown = heard
            else:
                event_rng = np.random.default_rng([seed, 2, s, r])
                shown = [_other_word(w, vocabulary, event_rng) for w in heard]
            features = _features(shown, counts, embedding_dim, seed)
            onsets = np.array([float(row["onset"]) for row in words])
            data = _signal(
                onsets,
                features,
                n_times,
                sfreq,
                mixing,
                kernels,
                snr,
                np.random.default_rng([seed, 3, s, r]),
            )
            session = source["session"] or "0"
            folder = out / f"sub-{subject}" / f"ses-{session}" / "meg"
            folder.mkdir(parents=True, exist_ok=True)
            prefix = f"sub-{subject}_ses-{session}_task-{source['task']}"
            info = mne.create_info([c["name"] for c in channels], sfreq, "mag")
            raw = mne.io.RawArray(data, info, verbose="error")
            raw.save(folder / f"{prefix}_meg.fif", fmt="single", overwrite=True, verbose="error")
            write_sidecars(folder, prefix, source, channels, kept, sfreq, duration, n_channels)
            scans.setdefault(session, []).append(f"meg/{prefix}_meg.fif")
            summary["recordings"].append(
                {
                    "subject": subject,
                    "session": session,
                    "task": source["task"],
                    "story": source["story"],
                    "duration_s": duration,
                    "n_words": len(words),
                    "n_events": len(kept),
                    "n_events_left_out": len(source["rows"]) - len(kept),
                }
            )
        for session, files in scans.items():
            write_table(
                out
                / f"sub-{subject}"
                / f"ses-{session}"
                / f"sub-{subject}_ses-{session}_scans.tsv",
                ["filename", "acq_time"],
                [{"filename": f, "acq_time": "n/a"} for f in files],
            )
    write_root(out, events_root, n_subjects, summary, related, snr)
    return out


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "", "n/a") else 0.0
    except ValueError:
        return 0.0


def _duration(source: dict[str, Any], max_seconds: float | None) -> float:
    """The recording's length: the source sidecar's, else 2 s after its last event."""
    sidecar = source["folder"] / f"{source['prefix']}_meg.json"
    if sidecar.is_file():
        duration = float(json.loads(sidecar.read_text())["RecordingDuration"])
    else:
        duration = max(float(r["onset"]) + _float(r.get("duration")) for r in source["rows"]) + 2
    return duration if max_seconds is None else min(duration, float(max_seconds))


def _other_word(word: str, vocabulary: list[str], rng: np.random.Generator) -> str:
    """A word type other than ``word``, drawn uniformly."""
    if len(vocabulary) < 2:
        raise ValueError("the unrelated twin needs at least two word types")
    while True:
        other = vocabulary[int(rng.integers(len(vocabulary)))]
        if other != word.lower():
            return other
