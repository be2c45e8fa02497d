"""MEG-to-text inference: a recording (any format neurofm reads) -> text per segment.

``generate_text_run`` is what ``neurofm generate RUN --input FILE`` runs for a ``meg_text`` run.
The recording is cut into segments of the run's ``window_seconds``:

- with word onsets (an events ``.tsv`` with an ``onset`` column given as ``events``, or the
  recording's own ``word`` events, e.g. a BIDS ``events.tsv``): one segment per group of the
  run's ``words_per_segment`` consecutive words, starting at the group's first onset;
- without: consecutive windows from the start of the recording.

Segments that would run past the end of the recording are not decoded and are listed in
``results.json`` (``not_decoded``), as is an undecoded tail. Each segment is decoded
free-running (greedy with the KV cache, or beam search) and written with its times.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurofm.errors import ConfigError
from neurofm.fileio import write_json_atomic
from neurofm.generation.text import generate_text_ids, hf_generate_text_ids
from neurofm.io.reader import read_recording
from neurofm.tokenizers.text_vocab import load_text_tokenizer
from neurofm.training.pretrained import from_pretrained
from neurofm.training.run_folder import MODEL_DIR
from neurofm.training.text_data import TEXT_DATA_FILE, TEXT_TOKENIZER_DIR

RESULTS_FILE = "results.json"
MEG_TYPES = ("mag", "grad")
ARRAY_SUFFIXES = (".npy", ".npz", ".txt", ".csv")


def read_onsets(path: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """Onsets (s) and, when given, words of an events ``.tsv`` / ``.csv`` (``onset`` column)."""
    path = Path(path)
    delimiter = "," if path.suffix == ".csv" else "\t"
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter=delimiter))
    except OSError as err:
        raise ConfigError(f"events: cannot read {str(path)!r}: {err}") from err
    if not rows or "onset" not in rows[0]:
        raise ConfigError(f"events: {str(path)!r} needs an 'onset' column (seconds)")
    if "word" in rows[0]:  # a BIDS events table: only the word rows
        rows = [r for r in rows if r["word"] not in ("", "n/a")]
    try:
        onsets = np.array([float(r["onset"]) for r in rows])
    except ValueError as err:
        raise ConfigError(f"events: {str(path)!r}: an onset is not a number: {err}") from err
    words = [r["word"] for r in rows] if rows and "word" in rows[0] else None
    return onsets, words


def segment_starts(
    n_times: int, sfreq: float, window: int, onsets: np.ndarray | None, words_per_segment: int
) -> tuple[list[int], list[dict[str, Any]]]:
    """Start samples of the segments, and what is not decoded (with the reason)."""
    if onsets is None:
        starts = list(range(0, n_times - window + 1, window))
        tail = n_times - (starts[-1] + window if starts else 0)
        skipped = [{"start": (n_times - tail) / sfreq, "reason": "tail shorter than a segment"}]
        return starts, skipped if tail else []
    order = np.sort(onsets)
    starts, skipped = [], []
    for first in order[::words_per_segment]:
        start = int(round(first * sfreq))
        if start < 0 or start + window > n_times:
            skipped.append({"start": float(first), "reason": "runs outside the recording"})
        else:
            starts.append(start)
    return starts, skipped


def generate_text_run(
    run_dir: str | Path,
    *,
    input_path: str | Path,
    events: str | Path | None = None,
    sfreq: float | None = None,
    output: str | Path | None = None,
    max_new_tokens: int = 32,
    num_beams: int = 1,
    batch_size: int = 16,
) -> Path:
    """Decode every segment of a recording with a ``meg_text`` run; write ``results.json``.

    Parameters
    ----------
    run_dir : path
        A run folder of ``neurofm fit`` with a ``meg_text`` model.
    input_path : path
        The recording (``.fif``, ``.npy`` with ``sfreq``, BIDS, ...; see ``read_recording``).
    events : path, optional
        Word onsets (``.tsv`` / ``.csv`` with ``onset``, optionally ``word``).
    sfreq : float, optional
        Sampling rate of array inputs (Hz); their rows are read as MEG channels.
    output : path, optional
        Output folder (default ``<run_dir>/generated``).
    max_new_tokens, num_beams, batch_size
        Decoding settings (greedy with the cache when ``num_beams`` is 1).

    Returns
    -------
    Path
        The ``results.json`` written.
    """
    run_dir = Path(run_dir)
    model = from_pretrained(run_dir / MODEL_DIR).eval()
    tokenizer = load_text_tokenizer(run_dir / TEXT_TOKENIZER_DIR)
    data = json.loads((run_dir / TEXT_DATA_FILE).read_text())
    # an array file names no channel types: its rows are the model's MEG channels
    array = Path(input_path).suffix.lower() in ARRAY_SUFFIXES
    recording = read_recording(
        input_path, preload=True, sfreq=sfreq, ch_types="mag" if array else None
    )
    if abs(recording.sfreq - data["sfreq"]) > 1e-6:
        raise ConfigError(
            f"input: {str(input_path)!r} is sampled at {recording.sfreq:g} Hz, the run was "
            f"trained at {data['sfreq']:g} Hz; resample it first (e.g. with MNE)"
        )
    signal = np.asarray(recording.data, dtype=np.float32)
    meg = [i for i, t in enumerate(recording.sensors.types) if t in MEG_TYPES]
    if len(meg) == model.config.n_chans:
        signal = signal[meg]
    elif signal.shape[0] != model.config.n_chans:
        raise ConfigError(
            f"input: {str(input_path)!r} has {signal.shape[0]} channels ({len(meg)} MEG), the "
            f"model takes {model.config.n_chans}"
        )
    words = None
    if events is not None:
        onsets, words = read_onsets(events)
    elif "word" in recording.events.counts():
        mask = np.asarray(recording.events.description) == "word"
        onsets = np.asarray(recording.events.onset)[mask] - recording.first_time
    else:
        onsets = None
    window = int(round(data["window_seconds"] * recording.sfreq))
    starts, skipped = segment_starts(
        signal.shape[1], recording.sfreq, window, onsets, data["words_per_segment"]
    )
    texts: list[str] = []
    for i in range(0, len(starts), batch_size):
        x = torch.from_numpy(
            np.stack([signal[:, s : s + window] for s in starts[i : i + batch_size]])
        )
        if num_beams > 1:
            ids = hf_generate_text_ids(
                model,
                x,
                max_new_tokens=max_new_tokens,
                eos_id=tokenizer.eos_id,
                pad_id=tokenizer.pad_id,
                num_beams=num_beams,
            )
        else:
            ids = generate_text_ids(
                model, x, max_new_tokens=max_new_tokens, eos_id=tokenizer.eos_id
            )
        texts.extend(tokenizer.decode(row) for row in ids)
    segments = [
        {"index": k, "onset": s / recording.sfreq, "duration": window / recording.sfreq, "text": t}
        for k, (s, t) in enumerate(zip(starts, texts))
    ]
    out = Path(output) if output is not None else run_dir / "generated"
    path = out / RESULTS_FILE
    write_json_atomic(
        path,
        {
            "run": str(run_dir),
            "input": str(input_path),
            "sfreq": recording.sfreq,
            "segmentation": "word onsets" if onsets is not None else "consecutive windows",
            "events": None if events is None else str(events),
            "decoding": {
                "num_beams": num_beams,
                "max_new_tokens": max_new_tokens,
                "teacher_forcing": False,
            },
            "segments": segments,
            "not_decoded": skipped,
            "words_given": words is not None,
        },
    )
    return path
