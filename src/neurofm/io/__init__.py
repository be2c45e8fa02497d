"""neurofm.io: read any supported file into a :class:`~neurofm.data.recording.Recording`.

Thin over ``mne.io`` (vendor formats), ``mne_bids`` (BIDS), ``pynwb`` (NWB) and ``scipy.io``
(MATLAB). Every failure is a :class:`~neurofm.errors.RecordingError` naming the file and the
problem. MNE, mne-bids and pynwb are imported only when a file needs them.
"""

from neurofm.errors import RecordingError
from neurofm.io.bids import (
    BidsSidecars,
    attach_events,
    find_bids_recordings,
    find_bids_signal,
    read_bids_channels,
    read_bids_events,
    read_bids_sidecars,
)
from neurofm.io.lazy import LazySignal
from neurofm.io.reader import read_bids, read_recording, read_recordings
from neurofm.io.spikes import spikes_to_recording
from neurofm.io.validate import check_finite, validate_recording

__all__ = [
    "BidsSidecars",
    "LazySignal",
    "RecordingError",
    "attach_events",
    "check_finite",
    "find_bids_recordings",
    "find_bids_signal",
    "read_bids",
    "read_bids_channels",
    "read_bids_events",
    "read_bids_sidecars",
    "read_recording",
    "read_recordings",
    "spikes_to_recording",
    "validate_recording",
]
