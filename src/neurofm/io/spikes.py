"""Spiking data: spike times binned into a counts Recording, and NWB files (units table or
an ElectricalSeries) via pynwb."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurofm.data.recording import Events, Recording
from neurofm.errors import RecordingError
from neurofm.types import SensorInfo


def spikes_to_recording(
    spike_times: list[np.ndarray],
    *,
    bin_size: float,
    t_start: float = 0.0,
    t_stop: float | None = None,
    unit_names: list[str] | None = None,
    path: str | None = None,
) -> Recording:
    """Bin spike times (s) into a ``(n_units, n_bins)`` counts Recording with ``sfreq = 1/bin_size``.

    Bin ``k`` counts the spikes in ``[t_start + k * bin_size, t_start + (k + 1) * bin_size)``.
    Without ``t_stop`` the last bin is the one holding the last spike. A spike outside
    ``[t_start, t_stop)`` raises (nothing is dropped). The spike times are kept in
    ``meta["spike_times"]`` (list of float arrays, s) for spike-time tokenizers.
    """
    if not bin_size or bin_size <= 0:
        raise RecordingError(
            f"bin_size must be a positive number of seconds, got {bin_size!r}", path=path
        )
    times = [np.sort(np.asarray(t, dtype=np.float64).reshape(-1)) for t in spike_times]
    names = unit_names or [f"unit{i:03d}" for i in range(len(times))]
    if len(names) != len(times):
        raise RecordingError(f"{len(names)} unit names for {len(times)} units", path=path)
    last = max((t[-1] for t in times if t.size), default=t_start)
    # bin positions rounded to 1e-9 bins so that float error does not move an edge spike
    n_bins = (
        int(np.floor(np.round((last - t_start) / bin_size, 9))) + 1
        if t_stop is None
        else int(np.ceil(np.round((t_stop - t_start) / bin_size, 9)))
    )
    counts = np.zeros((len(times), n_bins), dtype=np.float64)
    for unit, unit_times in enumerate(times):
        index = np.floor(np.round((unit_times - t_start) / bin_size, 9)).astype(np.int64)
        outside = (index < 0) | (index >= n_bins)
        if outside.any():
            bad = float(unit_times[np.flatnonzero(outside)[0]])
            raise RecordingError(
                f"spike at {bad} s lies outside [{t_start}, {t_start + n_bins * bin_size}) s",
                path=path,
                channel=names[unit],
            )
        counts[unit] = np.bincount(index, minlength=n_bins)
    sensors = SensorInfo(names=names, types=["spikes"] * len(names))
    return Recording(
        data=counts,
        sfreq=1.0 / bin_size,
        sensors=sensors,
        first_time=t_start,
        source={} if path is None else {"path": path},
        meta={"spike_times": times, "bin_size": float(bin_size)},
    )


def read_nwb(path: Path, *, bin_size: float | None) -> Recording:
    """An NWB file: its units table binned with ``bin_size``, else its first ElectricalSeries."""
    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except Exception as err:  # noqa: BLE001 - any failure of the HDF5/NWB parser is a bad file
        raise RecordingError(
            f"cannot read as NWB: {type(err).__name__}: {err}", path=str(path)
        ) from err
    try:
        ids = {
            "subject": None if nwb.subject is None else nwb.subject.subject_id,
            "session": nwb.session_id,
        }
        if nwb.units is not None and len(nwb.units) > 0:
            if bin_size is None:
                raise RecordingError(
                    "an NWB units table holds spike times: pass bin_size=<seconds>", path=str(path)
                )
            units = nwb.units
            spike_times = [np.asarray(units.get_unit_spike_times(i)) for i in range(len(units))]
            names = [f"unit{int(u)}" for u in units.id[:]]
            recording = spikes_to_recording(
                spike_times, bin_size=bin_size, unit_names=names, path=str(path)
            )
        else:
            recording = _electrical_series(nwb, path)
        recording.events = _nwb_trials(nwb, recording.first_time)
        recording.subject, recording.session = ids["subject"], ids["session"]
        return recording
    finally:
        io.close()


def _electrical_series(nwb: Any, path: Path) -> Recording:
    from pynwb.ecephys import ElectricalSeries

    series = [obj for obj in nwb.acquisition.values() if isinstance(obj, ElectricalSeries)]
    if not series:
        raise RecordingError(
            "the NWB file has neither a units table nor an ElectricalSeries", path=str(path)
        )
    first = series[0]
    if first.rate is None:
        raise RecordingError(
            f"ElectricalSeries {first.name!r} has timestamps, not a rate", path=str(path)
        )
    data = np.asarray(first.data[:], dtype=np.float64).T * first.conversion  # (C, T) in V
    electrodes = first.electrodes.to_dataframe()
    names = (
        [str(x) for x in electrodes["label"]]
        if "label" in electrodes
        else [f"e{int(i)}" for i in electrodes.index]
    )
    sensors = SensorInfo(names=names, types=["lfp"] * len(names))
    return Recording(
        data=data,
        sfreq=float(first.rate),
        sensors=sensors,
        first_time=float(first.starting_time or 0.0),
        source={"path": str(path)},
    )


def _nwb_trials(nwb: Any, first_time: float) -> Events:
    if nwb.trials is None or len(nwb.trials) == 0:
        return Events()
    table = nwb.trials.to_dataframe()
    start = table["start_time"].to_numpy(dtype=np.float64)
    stop = table["stop_time"].to_numpy(dtype=np.float64)
    extra = [c for c in table.columns if c not in ("start_time", "stop_time")]
    payload = [{c: _plain(row[c]) for c in extra} for _, row in table.iterrows()]
    return Events(start - first_time, stop - start, ["trial"] * len(start), payload)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
