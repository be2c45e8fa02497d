"""``neurofm synth-masc``: write a MEG-MASC-like BIDS dataset (real word onsets, synthetic MEG)."""

from __future__ import annotations

from typing import Optional


def synth_masc(
    output: str,
    events_root: str,
    subjects: int = 2,
    stories: Optional[list] = None,
    sfreq: float = 100.0,
    channels: int = 208,
    snr: float = 1.0,
    unrelated: bool = False,
    embedding_dim: int = 16,
    seed: int = 0,
    max_seconds: Optional[float] = None,
    overwrite: bool = False,
) -> None:
    """Write a BIDS tree laid out as MEG-MASC whose events are MEG-MASC's real word onsets and
    whose MEG carries word-evoked responses that depend on the word (length, frequency, a fixed
    random embedding), over 1/f background noise. ``--unrelated`` writes the twin whose responses
    belong to random other words (nothing about the heard word can be decoded from it).

    Args:
        output: the BIDS root to write.
        events_root: a MEG-MASC BIDS tree holding events.tsv (and channels.tsv, *_meg.json).
        subjects: synthetic subjects, each hearing every story.
        stories: only these stories (e.g. [lw1]); default all in the events.
        sfreq: sampling rate of the written signal (Hz).
        channels: MEG channels (at most the 208 of MEG-MASC's KIT system).
        snr: RMS of the word responses over RMS of the background.
        unrelated: write the twin whose responses are unrelated to the words.
        embedding_dim: size of the random word embedding among the response features.
        seed: seed of everything random.
        max_seconds: shorten each recording to this length (s).
        overwrite: replace a non-empty output folder.
    """
    import json

    from neurofm.data.synthetic_masc import make_masc_like

    root = make_masc_like(
        output,
        events_root=events_root,
        n_subjects=subjects,
        stories=None if stories is None else [str(s) for s in stories],
        sfreq=sfreq,
        n_channels=channels,
        snr=snr,
        related=not unrelated,
        embedding_dim=embedding_dim,
        seed=seed,
        max_seconds=max_seconds,
        overwrite=overwrite,
    )
    summary = json.loads((root / "synthetic.json").read_text())
    n_words = sum(r["n_words"] for r in summary["recordings"])
    print(
        f"wrote {root}: {len(summary['recordings'])} recordings of {subjects} subject(s), "
        f"{n_words} words, stories {summary['settings']['stories']}, "
        f"{'unrelated twin' if unrelated else 'word-related responses'}, snr {snr:g}"
    )
