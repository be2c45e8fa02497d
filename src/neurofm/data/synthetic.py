"""Synthetic recordings with known ground truth, for tests and examples.

- :func:`synthetic_eeg`: 1/f (aperiodic) background + sinusoidal oscillations at given
  frequencies + evoked responses at recorded event onsets.
- :func:`synthetic_spikes`: Poisson spike counts of units cosine-tuned to a movement direction.
- :func:`synthetic_store`: a prepared store of several synthetic subjects/sessions/runs.
- :func:`synthetic_reach_store`: a prepared store of synthetic spike counts with behaviour
  channels (train / val / test recordings).

The ground truth (frequencies, amplitudes, gains, tuning parameters) is kept in
``Recording.meta["ground_truth"]``. Everything is drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from neurofm.data.recording import Events, Recording
from neurofm.data.store import PreparedStore
from neurofm.types import SensorInfo


def hemisphere_positions(n_chans: int, radius: float = 0.09) -> np.ndarray:
    """``n_chans`` points spread evenly over the upper half of a sphere (Fibonacci spiral).

    Returns
    -------
    ndarray, shape (n_chans, 3)
        Positions in metres, head-like (``z >= 0``).
    """
    k = np.arange(n_chans) + 0.5
    z = 1.0 - k / n_chans  # heights in (0, 1): upper hemisphere
    ring = np.sqrt(1.0 - z**2)
    phi = k * np.pi * (3.0 - np.sqrt(5.0))
    return radius * np.column_stack([ring * np.cos(phi), ring * np.sin(phi), z])


def aperiodic_noise(
    rng: np.random.Generator, n_chans: int, n_times: int, exponent: float
) -> np.ndarray:
    """Gaussian noise with power spectrum ``~ 1 / f**exponent``, unit std per channel, (C, T)."""
    spectrum = np.fft.rfft(rng.standard_normal((n_chans, n_times)), axis=1)
    freqs = np.fft.rfftfreq(n_times)
    gain = np.zeros_like(freqs)
    gain[1:] = freqs[1:] ** (-exponent / 2.0)  # amplitude ~ f^(-exponent/2): power ~ f^-exponent
    noise = np.fft.irfft(spectrum * gain, n=n_times, axis=1)
    return noise / noise.std(axis=1, keepdims=True)


def synthetic_eeg(
    *,
    n_chans: int = 8,
    sfreq: float = 250.0,
    duration: float = 60.0,
    oscillations: Sequence[tuple[float, float]] = ((10.0, 5e-6),),
    background_amplitude: float = 1e-5,
    aperiodic_exponent: float = 1.0,
    evoked: Mapping[str, float] | None = None,
    n_events: int = 20,
    evoked_latency: float = 0.1,
    evoked_width: float = 0.03,
    ch_type: str = "eeg",
    subject: str | None = "01",
    session: str | None = None,
    run: str | None = None,
    seed: int = 0,
) -> Recording:
    """A recording of 1/f background, oscillations and evoked responses.

    Parameters
    ----------
    n_chans, sfreq, duration
        Channels, sampling rate (Hz) and length (s).
    oscillations : sequence of (frequency Hz, amplitude)
        Sinusoids added to every channel, with a random phase per channel.
    background_amplitude : float
        Standard deviation of the 1/f background per channel (V for EEG).
    aperiodic_exponent : float
        Exponent of the background's power spectrum ``1 / f**exponent``.
    evoked : mapping of str to float, optional
        Event description -> peak amplitude of its evoked response (default
        ``{"stim": 2e-5}``). ``n_events`` onsets are drawn at random (at least
        ``4 * evoked_latency`` apart) and their descriptions assigned in turn, shuffled.
    evoked_latency, evoked_width : float
        Peak latency and Gaussian width (s) of the evoked response, scaled per channel by a
        gain in [0.5, 1].
    ch_type : str
        Channel type of every channel (``"eeg"``, ``"mag"``, ``"lfp"``, ...).
    subject, session, run : str or None
        Identifiers of the recording.
    seed : int
        Seed of every random draw.

    Returns
    -------
    Recording
        ``data`` (n_chans, round(duration * sfreq)) float64 in physical units, events, positions
        on a hemisphere, and ``meta["ground_truth"]`` with the oscillations, the background
        parameters, the evoked amplitudes, latency, width and per-channel gains.
    """
    rng = np.random.default_rng(seed)
    n_times = int(round(duration * sfreq))
    time = np.arange(n_times) / sfreq
    data = background_amplitude * aperiodic_noise(rng, n_chans, n_times, aperiodic_exponent)
    for freq, amplitude in oscillations:
        phase = rng.uniform(0, 2 * np.pi, size=(n_chans, 1))
        data += amplitude * np.sin(2 * np.pi * freq * time[None, :] + phase)
    evoked = {"stim": 2e-5} if evoked is None else dict(evoked)
    gains = rng.uniform(0.5, 1.0, size=n_chans)
    spacing = 4 * evoked_latency + 6 * evoked_width
    onsets = _spaced_onsets(rng, n_events, duration - spacing, spacing) if evoked else np.zeros(0)
    names = list(evoked)
    descriptions = [names[i % len(names)] for i in rng.permutation(onsets.size)]
    kernel_t = np.arange(int(round(spacing * sfreq))) / sfreq
    kernel = np.exp(-0.5 * ((kernel_t - evoked_latency) / evoked_width) ** 2)
    for onset, desc in zip(onsets, descriptions):
        start = int(round(onset * sfreq))
        data[:, start : start + kernel.size] += evoked[desc] * gains[:, None] * kernel[None, :]
    sensors = SensorInfo(
        names=[f"{ch_type.upper()}{i:03d}" for i in range(n_chans)],
        types=[ch_type] * n_chans,
        positions=hemisphere_positions(n_chans),
    )
    truth = {
        "oscillations": [
            {"frequency_hz": float(f), "amplitude": float(a)} for f, a in oscillations
        ],
        "background_amplitude": background_amplitude,
        "aperiodic_exponent": aperiodic_exponent,
        "evoked_amplitude": evoked,
        "evoked_latency_s": evoked_latency,
        "evoked_width_s": evoked_width,
        "channel_gains": gains.tolist(),
    }
    return Recording(
        data=data,
        sfreq=sfreq,
        sensors=sensors,
        events=Events(onsets, np.zeros(onsets.size), descriptions),
        subject=subject,
        session=session,
        run=run,
        source={"path": f"synthetic://eeg/seed={seed}", "sha256": "", "format": "synthetic"},
        meta={"ground_truth": truth},
    )


def _spaced_onsets(rng: np.random.Generator, n: int, last: float, spacing: float) -> np.ndarray:
    """``n`` sorted onsets in ``[spacing, last]`` at least ``spacing`` apart (seconds)."""
    slack = last - spacing - n * spacing
    if slack < 0:
        raise ValueError(f"{n} events {spacing:.3f} s apart do not fit in the recording")
    gaps = np.sort(rng.uniform(0, slack, size=n))
    return spacing + gaps + spacing * np.arange(n)


def synthetic_spikes(
    *,
    n_units: int = 20,
    n_bins: int = 6000,
    bin_size: float = 0.01,
    hold: float = 0.5,
    baseline_rate: tuple[float, float] = (5.0, 20.0),
    modulation: tuple[float, float] = (0.3, 0.9),
    subject: str | None = "01",
    seed: int = 0,
) -> Recording:
    """Binned Poisson spike counts of units cosine-tuned to a movement direction.

    The direction ``theta(t)`` is piecewise constant (a new direction drawn uniformly every
    ``hold`` seconds, like centre-out reaches). Unit ``i`` fires at
    ``rate_i(t) = b_i + m_i * cos(theta(t) - pd_i)`` spikes/s with ``b_i`` in ``baseline_rate``,
    ``m_i = depth_i * b_i`` with ``depth_i`` in ``modulation`` (so rates stay positive) and a
    uniform preferred direction ``pd_i``.

    Returns
    -------
    Recording
        Type ``spikes``, ``data`` (n_units, n_bins) counts, ``sfreq = 1 / bin_size``; an event
        ``"target"`` at each direction change with payload ``{"direction_rad": theta}``;
        ``meta["ground_truth"]`` holds ``baseline_rate_hz``, ``modulation_hz``,
        ``preferred_direction_rad`` (per unit) and ``direction_rad`` (per bin).
    """
    rng = np.random.default_rng(seed)
    per_hold = max(1, int(round(hold / bin_size)))
    n_holds = -(-n_bins // per_hold)
    targets = rng.uniform(-np.pi, np.pi, size=n_holds)
    direction = np.repeat(targets, per_hold)[:n_bins]
    base = rng.uniform(*baseline_rate, size=n_units)
    depth = base * rng.uniform(*modulation, size=n_units)
    preferred = rng.uniform(-np.pi, np.pi, size=n_units)
    rate = base[:, None] + depth[:, None] * np.cos(direction[None, :] - preferred[:, None])
    counts = rng.poisson(rate * bin_size).astype(np.float64)  # (n_units, n_bins)
    sensors = SensorInfo(names=[f"unit{i:03d}" for i in range(n_units)], types=["spikes"] * n_units)
    onsets = np.arange(n_holds) * per_hold * bin_size
    events = Events(
        onsets,
        np.full(n_holds, per_hold * bin_size),
        ["target"] * n_holds,
        [{"direction_rad": float(t)} for t in targets],
    )
    truth = {
        "baseline_rate_hz": base.tolist(),
        "modulation_hz": depth.tolist(),
        "preferred_direction_rad": preferred.tolist(),
        "direction_rad": direction.tolist(),
    }
    return Recording(
        data=counts,
        sfreq=1.0 / bin_size,
        sensors=sensors,
        events=events,
        subject=subject,
        source={"path": f"synthetic://spikes/seed={seed}", "sha256": "", "format": "synthetic"},
        meta={"ground_truth": truth},
    )


def synthetic_store(
    root: str | Path,
    *,
    n_subjects: int = 2,
    n_sessions: int = 1,
    n_runs: int = 1,
    n_chans: int = 4,
    sfreq: float = 100.0,
    duration: float = 20.0,
    evoked: Mapping[str, float] | None = None,
    n_events: int = 10,
    seed: int = 0,
) -> PreparedStore:
    """A prepared store of :func:`synthetic_eeg` recordings, one per subject x session x run.

    Recording ids are ``sub-<s>_ses-<e>_run-<r>``; each recording has its own seed derived from
    ``seed``. Returns the opened store (no splits set).
    """
    store = PreparedStore.create(root, name="synthetic")
    k = 0
    for sub in range(n_subjects):
        for ses in range(n_sessions):
            for run in range(n_runs):
                rec = synthetic_eeg(
                    n_chans=n_chans,
                    sfreq=sfreq,
                    duration=duration,
                    evoked=evoked,
                    n_events=n_events,
                    subject=f"{sub:02d}",
                    session=f"{ses:02d}",
                    run=f"{run:02d}",
                    seed=seed * 1000 + k,
                )
                store.write(
                    f"sub-{sub:02d}_ses-{ses:02d}_run-{run:02d}", rec, fingerprint="synthetic"
                )
                k += 1
    return store


def synthetic_reach_store(
    root: str | Path,
    *,
    n_units: int = 12,
    n_bins: int = 1500,
    bin_size: float = 0.05,
    seed: int = 0,
) -> PreparedStore:
    """A prepared store of three :func:`synthetic_spikes` recordings (train, val, test) with the
    movement as behaviour channels ``velocity_x``, ``velocity_y`` (cos, sin of the direction,
    type ``misc``) after the units, as the monkey reach reader writes them; no scaler."""
    store = PreparedStore.create(root, name="synthetic_reach")
    splits = {}
    for k, split in enumerate(("train", "val", "test")):
        rec = synthetic_spikes(
            n_units=n_units, n_bins=n_bins, bin_size=bin_size, hold=0.5, seed=seed * 10 + k
        )
        direction = np.asarray(rec.meta["ground_truth"]["direction_rad"])
        names = [*rec.sensors.names, "velocity_x", "velocity_y"]
        rec = Recording(
            data=np.concatenate([rec.data, np.cos(direction)[None], np.sin(direction)[None]]),
            sfreq=rec.sfreq,
            sensors=SensorInfo(names=names, types=["spikes"] * n_units + ["misc"] * 2),
            subject=f"{k:02d}",
            source=rec.source,
        )
        rec_id = f"sub-{k:02d}"
        store.write(rec_id, rec, fingerprint="synthetic")
        splits[split] = [{"recording": rec_id, "start": 0, "stop": n_bins}]
    store.manifest["splits"] = splits
    store.save_manifest()
    return store
