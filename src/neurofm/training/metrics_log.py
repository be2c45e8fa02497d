"""``metrics.csv`` of a run: a CSV logger that appends on resume instead of starting over.

Lightning's CSV logger deletes an existing ``metrics.csv`` when it starts, so a resumed run would
lose every row logged before the interruption. :class:`AppendingCSVLogger` keeps the file: rows
logged after the checkpoint being resumed from are dropped first (:func:`truncate_metrics`, they
are logged again), and new rows are appended under the file's header (widened when a new metric
appears, the old rows kept).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from neurofm.fileio import atomic_open


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV experiment writer, minus the deletion of an existing metrics file."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir=log_dir)
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as fh:
                header = next(csv.reader(fh), [])
            self.metrics_keys = sorted(set(header))

    def _check_log_dir_exists(self) -> None:  # keep the history of a resumed run
        return


class AppendingCSVLogger(CSVLogger):
    """A CSV logger writing ``<save_dir>/metrics.csv`` that appends to an existing file."""

    @property
    def experiment(self) -> ExperimentWriter:  # type: ignore[override]
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    def has_row(self, step: int) -> bool:
        """Whether ``metrics.csv`` already holds a row logged at ``step``."""
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        if not path.is_file():
            return False
        with open(path, newline="") as fh:
            return any(row.get("step") == str(step) for row in csv.DictReader(fh))


def truncate_metrics(path: str | Path, step: int) -> None:
    """Drop rows logged at or after ``step`` by a run that was killed (they will be logged again);
    every earlier row is kept."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    kept = [row for row in rows if row.get("step", "") in ("", None) or int(row["step"]) < step]
    with atomic_open(path, "w") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
