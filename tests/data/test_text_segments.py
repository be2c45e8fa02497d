"""Text segments from MEG-MASC's real word events: word windows, sentences, fixed windows,
nothing dropped silently, splits by subject and story, batches of signal and text."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from neurofm.data.recording import Events, Recording
from neurofm.data.splits import SplitError
from neurofm.data.text_segments import (
    TextSegmentDataset,
    collate_text_segments,
    segment_recording,
    split_segments,
)
from neurofm.errors import RecordingError
from neurofm.io.bids import attach_events, read_bids_sidecars

SFREQ = 50.0


@pytest.fixture(scope="module")
def story(shared_data) -> Recording:
    """lw1's real events on a 3-channel signal whose channel 0 is the time in seconds."""
    sidecars = read_bids_sidecars(
        shared_data / "meg_masc_events", subject="01", session="0", task="0"
    )
    n_times = int(sidecars.duration * SFREQ)
    data = np.zeros((3, n_times), dtype=np.float32)
    data[0] = np.arange(n_times) / SFREQ
    recording = Recording(
        data=data,
        sfreq=SFREQ,
        sensors=sidecars.sensors.pick([0, 1, 2]),
        subject="01",
        session="0",
        task="0",
        source={"path": "sub-01_ses-0_task-0_meg.fif"},
    )
    return attach_events(recording, sidecars.events)


def _word_stream(recording: Recording) -> list[str]:
    ev = recording.events
    return [
        ev.payload[i]["word"]
        for i in np.argsort(ev.onset, kind="stable")
        if ev.description[i] == "word"
    ]


def test_word_windows_cover_every_word_once_in_order(story):
    summary: dict = {}
    segments = segment_recording(story, words_per_segment=8, max_seconds=6.0, summary=summary)
    words = [w for s in segments for w in s.words]
    assert words == _word_stream(story) and len(words) == 668
    assert summary["n_words"] == 668 and summary["n_dropped_incomplete"] == 0
    assert all(1 <= len(s.words) <= 8 and s.duration <= 6.0 + 1 / SFREQ for s in segments)
    first = segments[0]
    assert first.text == "Tara stood stock still waiting for the first"
    assert (first.subject, first.session, first.story) == ("01", "0", "lw1")
    # the signal is the recording's, from the first word's onset (channel 0 holds the time)
    assert first.signal.dtype == np.float32
    assert first.signal[0, 0] == pytest.approx(first.onset) and first.onset == pytest.approx(
        23.5, abs=0.02
    )
    assert first.meta["word_onsets"][0] == pytest.approx(0.0, abs=0.02)


def test_overlapping_windows_step_by_the_stride(story):
    segments = segment_recording(story, words_per_segment=8, stride_words=4)
    assert segments[1].words[:4] == segments[0].words[4:]
    assert segments[-1].words[-1] == _word_stream(story)[-1]


def test_sentences_follow_sequence_ids(story):
    segments = segment_recording(story, mode="sentences", max_seconds=30.0)
    assert all(len(set(s.meta["sequence_ids"])) == 1 for s in segments)
    assert len(segments) == 52  # lw1 has 52 sequences (sentences and word lists), none cut
    assert segments[1].text.startswith("The gentle constant breeze")
    short = segment_recording(story, mode="sentences", max_seconds=4.0)
    assert len(short) > 52 and [w for s in short for w in s.words] == _word_stream(story)


def test_sentences_fall_back_to_punctuation():
    words = ["We", "ran.", "It", "rained", "hard!", "Done"]
    events = Events(
        np.arange(6) * 0.5 + 0.2, np.full(6, 0.3), ["word"] * 6, [{"word": w} for w in words]
    )
    recording = Recording(
        data=np.zeros((1, 500)), sfreq=100.0, sensors=SimpleNamespace(n_chans=1), events=events
    )
    texts = [s.text for s in segment_recording(recording, mode="sentences")]
    assert texts == ["We ran.", "It rained hard!", "Done"]


def test_fixed_windows_stack(story):
    segments = segment_recording(story, window_seconds=3.0, pre=0.2)
    assert {s.signal.shape for s in segments} == {(3, 150)}
    assert all(s.meta["word_onsets"][-1] < 3.0 for s in segments)
    with pytest.raises(ValueError, match="not both"):
        segment_recording(story, window_seconds=3.0, max_seconds=3.0)


def test_segments_outside_the_recording_raise_or_are_counted(story):
    cut = replace(story, data=story.data[:, : int(60 * SFREQ)])
    with pytest.raises(RecordingError, match=r"sub-01_ses-0_task-0_meg.fif.*words at \d+\.\d+ s"):
        segment_recording(cut, window_seconds=4.0)
    summary: dict = {}
    kept = segment_recording(cut, window_seconds=4.0, drop_incomplete=True, summary=summary)
    assert summary["n_dropped_incomplete"] > 0
    assert summary["n_segments"] == len(kept) == summary["n_segments"]
    assert len(kept) + summary["n_dropped_incomplete"] == len(
        segment_recording(story, window_seconds=4.0)
    )
    with pytest.raises(RecordingError, match="no 'word' events"):
        segment_recording(replace(story, events=Events()))


def _fake(subject: str, story: str, k: int) -> SimpleNamespace:
    return SimpleNamespace(subject=subject, story=story, k=k)


def test_splits_hold_out_whole_subjects_and_stories():
    segments = [
        _fake(f"{s:02d}", t, k) for s in range(1, 7) for t in ("a", "b", "c") for k in range(3)
    ]
    by_subject = split_segments(segments, by="subject", val=1, test=2, seed=3)
    groups = {name: {s.subject for s in part} for name, part in by_subject.items() if part}
    assert len(groups["test"]) == 2 and len(groups["val"]) == 1 and len(groups["train"]) == 3
    assert not (groups["train"] & groups["test"]) and not by_subject["excluded"]
    assert sum(len(p) for p in by_subject.values()) == len(segments)
    assert split_segments(segments, by="subject", val=1, test=2, seed=3) == by_subject
    both = split_segments(segments, by="subject_story", val=0, test=["01", "b"], seed=0)
    test_stories = {s.story for s in both["test"]}
    assert test_stories == {"b"}
    assert {s.subject for s in both["test"]} == {"01"} and len(test_stories) == 1
    assert all(s.subject != "01" and s.story not in test_stories for s in both["train"])
    assert sum(len(p) for p in both.values()) == len(segments) and both["excluded"]
    # the original order is kept within a split
    assert [s.k for s in both["train"][:3]] == [0, 1, 2]


def test_passages_follow_the_sound_files_and_windows_never_cross_them(story):
    sounds = {
        str(story.events.payload[i]["sound_id"])
        for i in range(len(story.events.onset))
        if story.events.description[i] == "word"
    }
    segments = segment_recording(story, words_per_segment=8, max_seconds=6.0)
    passages = [s.passage for s in segments]
    assert set(passages) == {f"lw1/{k}" for k in sounds} and len(sounds) == 4
    assert passages == sorted(passages, key=passages.index)  # each passage one run, in order
    assert [w for s in segments for w in s.words] == _word_stream(story)
    sentences = segment_recording(story, mode="sentences", max_seconds=30.0)
    assert {s.passage for s in sentences} == set(passages)


def test_splits_by_passage_hold_out_whole_passages():
    segments = [
        SimpleNamespace(subject=f"{s:02d}", story="a", passage=f"a/{p}", k=k)
        for s in range(1, 4)
        for p in range(4)
        for k in range(2)
    ]
    by_passage = split_segments(segments, by="passage", val=1, test=["a/2"], seed=0)
    held = {name: {s.passage for s in part} for name, part in by_passage.items() if part}
    assert held["test"] == {"a/2"} and len(held["val"]) == 1 and len(held["train"]) == 2
    assert not (held["train"] & (held["test"] | held["val"]))
    both = split_segments(segments, by="subject_passage", val=0, test=["01", "a/2"])
    assert {(s.subject, s.passage) for s in both["test"]} == {("01", "a/2")}
    assert all(s.subject != "01" and s.passage != "a/2" for s in both["train"])
    assert sum(len(p) for p in both.values()) == len(segments)
    # without a passage a segment's story is its passage
    plain = [_fake(f"{s:02d}", t, 0) for s in range(1, 3) for t in ("x", "y", "z")]
    assert {s.story for s in split_segments(plain, by="passage", val=0, test=["y"])["test"]} == {
        "y"
    }
    with pytest.raises(SplitError, match="allowed"):
        split_segments(plain, by="sound")


def test_splits_refuse_to_be_empty():
    segments = [_fake("01", "a", 0), _fake("02", "a", 1)]
    with pytest.raises(SplitError, match="story"):
        split_segments(segments, by="story", val=0, test=1)
    with pytest.raises(SplitError, match="not among"):
        split_segments(segments, by="subject", val=0, test=["07"])
    assert len(split_segments(segments, by="subject", val=0, test=1)["test"]) == 1


def test_dataset_and_collate_make_a_signal_text_batch(story):
    segments = segment_recording(story, window_seconds=2.0)[:3]
    dataset = TextSegmentDataset(segments, tokenizer=lambda text: [ord(c) % 50 + 1 for c in text])
    batch = collate_text_segments([dataset[i] for i in range(3)], pad_id=0)
    assert batch.x.shape == (3, 3, 100) and batch.x.dtype.is_floating_point
    lengths = [len(s.text) for s in segments]
    assert batch.target.shape == (3, max(lengths)) and str(batch.target.dtype) == "torch.int64"
    assert batch.meta["text_mask"].sum(dim=1).tolist() == lengths
    assert (batch.target[~batch.meta["text_mask"]] == 0).all()
    assert batch.meta["text"] == [s.text for s in segments]
    assert batch.meta["story"] == ["lw1"] * 3 and batch.meta["onset"][0] == segments[0].onset
    no_tokens = collate_text_segments([TextSegmentDataset(segments)[0]], pad_id=0)
    assert no_tokens.target is None and no_tokens.meta["text_mask"] is None
    ragged = TextSegmentDataset(segment_recording(story)[:2])
    with pytest.raises(ValueError, match="window_seconds"):
        collate_text_segments([ragged[0], ragged[1]], pad_id=0)
