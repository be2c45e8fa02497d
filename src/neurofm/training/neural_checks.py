"""Checks between the data and a NeuroFM-X style model of spiking or field-potential data:
which ``data.layout`` each input kind reads, and the sizes the model and the windows share."""

from __future__ import annotations

from typing import Any

LAYOUTS = {"binned_counts": "counts", "spike_events": "spikes"}
"""The ``data.layout`` of each model input kind (every other kind reads ``channels``)."""


def layout_problems(cfg: Any, spec: Any, dataset: Any, sfreq: float | None) -> list[str]:
    """The windows' layout and sizes against the model of spec ``spec`` (``dataset``: the train
    windows; ``sfreq``: their sampling rate, None when unknown)."""
    item = dataset[0]
    wanted = LAYOUTS.get(spec.inputs, "channels")
    if cfg.data.layout != wanted:
        return [
            f"data.layout: {cfg.data.layout!r}, but model {cfg.model['name']!r} takes "
            f"{spec.inputs}; set data.layout: {wanted} (binned-count models take counts, "
            "spike-event models spikes, the others channels)"
        ]
    if spec.inputs == "binned_counts":
        return count_problems(cfg, item)
    if spec.inputs == "spike_events":
        return event_problems(cfg, item, n_units=getattr(dataset, "n_units", None))
    if spec.inputs == "field_potentials":
        return field_problems(cfg, item, sfreq)
    return []


def _behaviour_problem(cfg: Any, item: dict, source: str) -> list[str]:
    n_behaviour = cfg.model.get("n_behaviour")
    given = 0 if item.get("target") is None else int(item["target"].shape[-1])
    if n_behaviour is not None and n_behaviour != given:
        return [f"model.n_behaviour: {n_behaviour}, but {source} gives {given} channels"]
    return []


def count_problems(cfg: Any, item: dict) -> list[str]:
    """A count model's unit and behaviour sizes match the windows' (x (T, U), target (T, K))."""
    problems = []
    n_units = cfg.model.get("n_units")
    if n_units is not None and n_units != item["x"].shape[-1]:
        problems.append(
            f"model.n_units: {n_units}, but the windows have {item['x'].shape[-1]} unit channels"
        )
    return problems + _behaviour_problem(cfg, item, "data.behaviour")


def event_problems(cfg: Any, item: dict, n_units: int | None) -> list[str]:
    """A spike-event model reads the source's units on windows of its bins."""
    model, data = cfg.model, cfg.data
    problems = []
    if n_units is not None and model.get("n_units") != n_units:
        problems.append(
            f"model.n_units: {model.get('n_units')}, but {data.store!r} has {n_units} units"
        )
    if model.get("n_bins") != data.window_length:
        problems.append(
            f"model.n_bins: {model.get('n_bins')}, but data.window_length is "
            f"{data.window_length} bins"
        )
    if model.get("bin_size") is None or abs(float(model["bin_size"]) - data.bin_size) > 1e-12:
        problems.append(
            f"model.bin_size: {model.get('bin_size')} s, but data.bin_size is {data.bin_size} s"
        )
    if model.get("n_waveform_features"):
        problems.append(
            "model.n_waveform_features: the spike-times source gives no waveform features; set 0"
        )
    return problems + _behaviour_problem(cfg, item, "data.behaviour_file")


def field_problems(cfg: Any, item: dict, sfreq: float | None) -> list[str]:
    """A field-potential model's rate and pooling fit the windows (x (C, T))."""
    model = cfg.model
    problems = []
    if sfreq is not None and abs(float(model.get("sfreq", sfreq)) - sfreq) > 1e-6:
        problems.append(f"model.sfreq: {model.get('sfreq')} Hz, but the windows are at {sfreq} Hz")
    pool, n_times = model.get("lfp_pool"), int(item["x"].shape[-1])
    if pool and n_times % int(pool):
        problems.append(
            f"model.lfp_pool: {pool} samples per step does not divide the windows' {n_times} "
            "samples (data.window_length)"
        )
    return problems + _behaviour_problem(cfg, item, "the windows (data.target_length: 0)")
