"""``neurofm inspect``: what a recording file, a prepared dataset or a BIDS folder holds."""

from __future__ import annotations

import json as _json
from pathlib import Path
from typing import Any, Optional


def inspect(
    path: str,
    json: bool = False,
    sfreq: Optional[float] = None,
    ch_types: Optional[str] = None,
    bin_size: Optional[float] = None,
    time_unit: Optional[str] = None,
    data_format: Optional[str] = None,
) -> None:
    """Show channels by type, sfreq, duration, events, bad channels and subject/session/task/run.

    A prepared dataset folder (with manifest.json) also shows its splits and preprocessing
    fingerprint; a BIDS folder whose signal files are absent is described from its sidecars
    (channels.tsv, *_meg.json, events.tsv); any other folder lists the recordings in it.

    Args:
        path: a recording file, a prepared dataset folder, a BIDS folder or a folder of files.
        json: print JSON instead of a table.
        sfreq: sampling rate (Hz) for array files that do not state it (.npy).
        ch_types: channel type of every channel for array files that do not state it.
        bin_size: bin width (s) for spike times and binned .mat counts.
        time_unit: unit of the times in a text file (s, ms, us, ns).
        data_format: sample width of a Neuroscan .cnt file (int16, int32) when its header does
            not tell.
    """
    options = {
        "sfreq": sfreq,
        "ch_types": ch_types,
        "bin_size": bin_size,
        "time_unit": time_unit,
        "data_format": data_format,
    }
    report = describe(Path(path), {k: v for k, v in options.items() if v is not None})
    print(_json.dumps(report, indent=1, default=_plain) if json else format_report(report))


def describe(path: Path, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report ``inspect`` prints, as a JSON-safe dict."""
    from neurofm.errors import RecordingError

    options = options or {}
    if path.is_dir() and any((path / n).is_file() for n in ("manifest.json", "incomplete.json")):
        return _describe_store(path)
    if path.is_dir() and _is_bids(path):
        return _describe_bids(path)
    from neurofm.data.prepare_inputs import is_recording_folder, recordings_in_folder

    if path.is_dir() and not is_recording_folder(path):
        from neurofm.io._checks import format_from_name

        # the recordings as prepare sees them (companion files with their header); notes and
        # tables are text too: text files are listed only with a time unit
        children = [] if "time_unit" in options else recordings_in_folder(path)
        if "time_unit" in options:
            for child in sorted(path.iterdir()):
                try:
                    format_from_name(child)
                except RecordingError:
                    continue
                children.append(child)
        items = []
        for child in children:
            try:
                items.extend(_summaries(child, options))
            except RecordingError as err:
                items.append({"source": str(child), "error": str(err)})
        return {"kind": "folder", "path": str(path), "recordings": items}
    return {"kind": "file", "path": str(path), "recordings": _summaries(path, options)}


def _summaries(path: Path, options: dict[str, Any]) -> list[dict[str, Any]]:
    from neurofm.io import read_recordings

    out = []
    for rec in read_recordings(path, nan_policy="mask", flat_policy="warn", **options):
        summary = rec.summary()
        intervals = rec.meta.get("nonfinite_intervals", {})
        summary["nonfinite_samples"] = {
            name: sum(stop - start for start, stop in runs) for name, runs in intervals.items()
        }
        summary["flat_channels"] = rec.meta.get("flat_channels", [])
        for key in ("condition", "nave", "part", "bin_size"):
            if key in rec.meta:
                summary[key] = rec.meta[key]
        out.append(summary)
    return out


def _is_bids(path: Path) -> bool:
    return (path / "dataset_description.json").is_file() or any(path.glob("sub-*"))


def _describe_bids(path: Path) -> dict[str, Any]:
    from neurofm.io import find_bids_recordings, find_bids_signal, read_bids_sidecars

    items = []
    for entities in find_bids_recordings(path):
        signal = find_bids_signal(path, **entities)
        if signal is not None:
            items.extend(_summaries(signal, {}))
        else:
            items.append(read_bids_sidecars(path, **entities).summary())
    return {"kind": "bids", "path": str(path), "recordings": items}


def _describe_store(path: Path) -> dict[str, Any]:
    from neurofm.data.store import PreparedStore, incomplete_reason

    reason = incomplete_reason(path)
    if not (path / "manifest.json").is_file():  # the first prepare stopped before any recording
        store = PreparedStore(path, {"recordings": []})
    else:
        store = PreparedStore.open(path, allow_incomplete=True)
    manifest = store.manifest
    splits = {}
    for name, segments in (manifest.get("splits") or {}).items():
        segments = [s for s in segments if isinstance(s, dict)]
        splits[name] = {
            "n_segments": len(segments),
            "n_samples": int(sum(s["stop"] - s["start"] for s in segments)),
            "recordings": sorted({s["recording"] for s in segments}),
        }
    recordings = []
    for rec in store.recordings:
        recordings.append(
            {
                "id": rec.id,
                "source": rec.source.get("path"),
                "format": rec.source.get("format"),
                "subject": rec.subject,
                "session": rec.session,
                "task": rec.task,
                "run": rec.run,
                "n_chans": rec.n_chans,
                "channels_by_type": rec.sensors.counts_by_type(),
                "sfreq": rec.sfreq,
                "n_times": rec.n_times,
                "duration_s": rec.n_times / rec.sfreq,
                "n_events": len(rec.events),
                "events_by_description": rec.events.counts(),
                "bads": list(rec.sensors.bads),
                "fingerprint": rec.fingerprint,
            }
        )
    return {
        "kind": "prepared",
        "path": str(path),
        "status": "complete" if reason is None else f"INCOMPLETE: {reason}",
        "name": manifest.get("name"),
        "fingerprint": store.fingerprint,
        "preprocessing": manifest.get("preprocessing", {}),
        "split_policy": manifest.get("split_policy"),
        "splits": splits,
        "scaler": {
            k: v for k, v in (manifest.get("scaler") or {}).items() if k in ("kind", "fitted_on")
        },
        "recordings": recordings,
    }


def format_report(report: dict[str, Any]) -> str:
    """A human-readable table of a :func:`describe` report."""
    lines = [f"{report['kind']}: {report['path']}"]
    if report["kind"] == "prepared":
        lines.append(f"  status       {report['status']}")
        lines.append(f"  name         {report['name']}")
        lines.append(f"  fingerprint  {report['fingerprint'] or '-'}")
        if report["split_policy"]:
            lines.append(f"  split by     {report['split_policy']}")
        for name, split in report["splits"].items():
            lines.append(
                f"  split {name:<6} {split['n_segments']} segment(s), {split['n_samples']} "
                f"samples, recordings {', '.join(split['recordings'])}"
            )
    for item in report["recordings"]:
        lines.append("")
        lines.extend(_format_recording(item))
    return "\n".join(lines)


def _format_recording(item: dict[str, Any]) -> list[str]:
    title = item.get("id") or item.get("source")
    if "error" in item:
        return [f"{title}", f"  error      {item['error']}"]
    ids = "  ".join(f"{k} {item.get(k) or '-'}" for k in ("subject", "session", "task", "run"))
    by_type = ", ".join(f"{k} {v}" for k, v in item["channels_by_type"].items()) or "unknown"
    events = ", ".join(f"{k} {v}" for k, v in sorted(item["events_by_description"].items()))
    sfreq = "unknown" if item["sfreq"] is None else f"{item['sfreq']:g} Hz"
    duration = "unknown" if item["duration_s"] is None else f"{item['duration_s']:.3f} s"
    lines = [
        f"{title}  [{item.get('format') or ''}]",
        f"  {ids}",
        f"  channels   {item['n_chans'] if item['n_chans'] is not None else '-'}: {by_type}",
        f"  sfreq      {sfreq}   n_times {item['n_times'] if item['n_times'] is not None else '-'}"
        f"   duration {duration}",
        f"  events     {item['n_events']}{': ' + events if events else ''}",
        f"  bads       {', '.join(item['bads']) or 'none'}",
    ]
    if item.get("bids_channel_types"):
        kinds = ", ".join(f"{k} {v}" for k, v in item["bids_channel_types"].items())
        lines.append(f"  BIDS types {kinds}")
    if item.get("signal_present") is False:
        lines.append("  signal     absent (described from the BIDS sidecars)")
    for key in ("condition", "nave", "part"):
        if key in item:
            lines.append(f"  {key:<10} {item[key]}")
    if item.get("flat_channels"):
        lines.append(f"  flat       {', '.join(item['flat_channels'])}")
    if item.get("nonfinite_samples"):
        bad = ", ".join(f"{k} {v}" for k, v in item["nonfinite_samples"].items())
        lines.append(f"  non-finite {bad}")
    return lines


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
