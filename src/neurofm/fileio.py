"""Atomic file writes: a reader never sees a half-written file at the final path."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    On any exception (or a kill) the temporary file is removed or left under a ``.tmp`` name,
    never at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: str | Path) -> None:
    """fsync a directory so that a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some filesystems cannot fsync a directory
            os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically."""
    with atomic_open(path, "w") as fh:
        json.dump(data, fh, indent=1, allow_nan=False)


def resolve_inside(root: str | Path, relative: str, *, source: str | Path, field: str) -> Path:
    """``root / relative``, refused unless it stays inside ``root``.

    ``relative`` comes from a file (``source``, its ``field``): absolute paths, ``..`` parts and
    symbolic links that lead out of ``root`` raise :class:`~neurofm.errors.UnsafePathError`, so
    that nothing outside ``root`` is read, written or deleted on the strength of a file's content.
    """
    from neurofm.errors import UnsafePathError

    root = Path(root)
    text = str(relative)
    target = root / text
    outside = not text or Path(text).is_absolute() or ".." in Path(text).parts
    if not outside:
        outside = not target.resolve().is_relative_to(root.resolve())
    if outside:
        raise UnsafePathError(path=str(source), field=field, value=text, root=str(root))
    return target


LOCK_FILE = ".lock"
"""The lock file of an output folder (a prepared store, a run folder)."""


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, command: str) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if needed) while the block runs.

    The lock is an OS advisory lock on ``folder/.lock``, released by the OS when the process
    ends in any way (a ``kill -9`` leaves no stale lock); the file records the holder's process
    id, command and start time for the error another writer gets.

    Raises
    ------
    FolderLockedError
        Another process holds the lock; the message names it.
    """
    from neurofm.errors import FolderLockedError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            holder = _holder(path)
            raise FolderLockedError(
                f"{str(folder)!r} is being written by another neurofm process ({holder}); "
                f"wait for it to finish or stop it, then run again (lock file {str(path)!r})"
            )
        import datetime

        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        record = json.dumps({"pid": os.getpid(), "command": command, "started": started})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    """The lock holder in words: ``pid 123, neurofm prepare, started 2024-...``."""
    try:
        record = json.loads(path.read_text())
        return f"process id {record['pid']}, {record['command']}, started {record['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown: the lock file is being written"


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.<name>.*tmp`` files an interrupted atomic write left in ``folder``.

    Call it only while holding the folder's lock: no other writer can be using them.
    """
    removed = []
    for path in sorted(Path(folder).glob(".*tmp")):
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


MIN_FREE_BYTES = 16 * 1024 * 1024
"""Free space an output folder must have before long work starts (a full disk is refused)."""

WRITE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)
"""OS errors of a write that the user can fix (permissions, read-only or full filesystem)."""


def check_writable(
    path: str | Path, *, what: str = "output folder", min_free: int = MIN_FREE_BYTES
) -> None:
    """Check that the folder ``path`` (or, when it does not exist yet, the nearest existing
    folder above it) can be written and has ``min_free`` bytes free, before long work starts.

    A small file is created, written, fsynced and removed there: a read-only folder or
    filesystem, a path below a file, or a full disk raise one
    :class:`~neurofm.errors.OutputError` naming the path.
    """
    from neurofm.errors import OutputError

    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(
            f"{what} {str(path)!r} cannot be created: {str(existing)!r} is a file, not a folder"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".neurofm-write-check.", dir=existing)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        raise OutputError(
            f"{what} {str(path)!r} is not writable: {err.strerror or err} (in {str(existing)!r});"
            " choose another folder or fix its permissions"
        ) from err
    free = shutil.disk_usage(existing).free
    if free < min_free:
        raise OutputError(
            f"{what} {str(path)!r}: only {free / 1e6:.1f} MB free on its filesystem (at least "
            f"{min_free / 1e6:.0f} MB needed); free some space or choose another folder"
        )
