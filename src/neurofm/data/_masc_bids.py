"""BIDS files of the MEG-MASC-like dataset (:mod:`neurofm.data.synthetic_masc`): tables,
per-recording sidecars and the root's description files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def write_table(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_sidecars(
    folder: Path,
    prefix: str,
    source: dict[str, Any],
    channels: list[dict[str, str]],
    rows: list[dict[str, str]],
    sfreq: float,
    duration: float,
    n_channels: int,
) -> None:
    """events.tsv (rows copied, ``sample`` at the new rate), channels.tsv, meg.json, events.json."""
    written = []
    for row in rows:
        row = dict(row)
        if "sample" in row:
            row["sample"] = str(int(round(float(row["onset"]) * sfreq)))
        written.append(row)
    write_table(folder / f"{prefix}_events.tsv", source["columns"], written)
    channel_rows = [
        {
            **c,
            "sampling_frequency": f"{sfreq:g}",
            "low_cutoff": "n/a",
            "high_cutoff": f"{sfreq / 2:g}",
            "status": "good",
        }
        for c in channels
    ]
    columns = list(dict.fromkeys(k for c in channel_rows for k in c))
    write_table(folder / f"{prefix}_channels.tsv", columns, channel_rows)
    sidecar_path = source["folder"] / f"{source['prefix']}_meg.json"
    sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.is_file() else {}
    sidecar.update(
        TaskName=str(source["task"]),
        SamplingFrequency=sfreq,
        RecordingDuration=duration,
        MEGChannelCount=n_channels,
        MEGREFChannelCount=0,
        MiscChannelCount=0,
        Manufacturer="n/a",
        ManufacturersModelName="synthetic signal (neurofm make_masc_like) on MEG-MASC's channels",
        SoftwareFilters="n/a",
        PowerLineFrequency="n/a",
    )
    (folder / f"{prefix}_meg.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    events_json = source["folder"] / f"{source['prefix']}_events.json"
    if events_json.is_file():
        shutil.copyfile(events_json, folder / f"{prefix}_events.json")


def write_root(
    out: Path,
    events_root: Path,
    n_subjects: int,
    summary: dict[str, Any],
    related: bool,
    snr: float,
) -> None:
    source_description = events_root / "dataset_description.json"
    source = json.loads(source_description.read_text()) if source_description.is_file() else {}
    kind = "word-related" if related else "unrelated-to-the-words twin"
    description = {
        "Name": f"MEG-MASC-like synthetic MEG ({kind}, snr {snr:g})",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "GeneratedBy": [
            {
                "Name": "neurofm",
                "Version": summary["version"],
                "Description": "Real MEG-MASC word onsets with synthetic word-evoked responses "
                "and 1/f background; settings in synthetic.json",
            }
        ],
        "SourceDatasets": [{"DOI": source["DatasetDOI"]}] if "DatasetDOI" in source else [],
    }
    (out / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    write_table(
        out / "participants.tsv",
        ["participant_id"],
        [{"participant_id": f"sub-{s + 1:02d}"} for s in range(n_subjects)],
    )
    (out / "synthetic.json").write_text(json.dumps(summary, indent=2) + "\n")
