"""Guards of ``neurofm prepare``: the incomplete-store marker, and workers that end with their
parent."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import threading
import time
from pathlib import Path

from neurofm.data.store import INCOMPLETE
from neurofm.fileio import write_json_atomic


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
