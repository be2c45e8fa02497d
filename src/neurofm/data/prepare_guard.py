"""Guards of ``neurofm prepare``: reader options, the incomplete-store marker, and workers that
end with their parent."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from neurofm.data.store import INCOMPLETE
from neurofm.fileio import write_json_atomic
from neurofm.io._checks import format_from_name


@dataclass
class ReaderConfig:
    """Options given to :func:`~neurofm.io.read_recording` for every input."""

    data_format: Literal["auto", "int16", "int32"] | None = None  # CNT sample width
    allow_truncated: bool = False  # read the complete part of a truncated file (a warning)

    def options(self, path: str) -> dict[str, Any]:
        """The options that apply to the file at ``path``."""
        out: dict[str, Any] = {"allow_truncated": self.allow_truncated}
        if self.data_format is not None and format_from_name(Path(path)) == "cnt":
            out["data_format"] = self.data_format
        return out


def mark_incomplete(root: Path, error: str | None = None) -> None:
    """Write ``incomplete.json``: who is preparing the store (and how it failed)."""
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    if error is not None and (root / INCOMPLETE).is_file():
        with contextlib.suppress(OSError, ValueError):
            started = json.loads((root / INCOMPLETE).read_text())["started"]
    write_json_atomic(root / INCOMPLETE, {"pid": os.getpid(), "started": started, "error": error})


def watch_parent(parent: int, interval: float = 0.5) -> None:
    """Worker initializer: end this worker as soon as the preparing process is gone.

    A pool's workers wait for work from their parent forever; when the parent is killed
    (``kill -9``) they would never be told. A daemon thread polls the parent process id (a
    dead parent's children are given another parent) and exits the worker.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="neurofm-parent-watch", daemon=True).start()
