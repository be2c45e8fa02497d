"""Checkpoint files: weights as safetensors, training state as plain data, written atomically.

A checkpoint is a folder ``<run_dir>/checkpoints/step-<N>/`` holding

``model.safetensors``
    The model's ``state_dict`` (same keys as ``<run_dir>/model/model.safetensors``).
``state.pt``
    Everything else needed to resume exactly (optimizer, scheduler, loop progress, RNG states,
    data position, objective buffers), saved with ``torch.save`` and holding only tensors,
    numbers, strings and containers, so that ``torch.load(weights_only=True)`` reads it and a
    checkpoint can never execute code.
``meta.json``
    Step, epoch, neurofm version, the byte size of each file (checked when listing) and its
    SHA-256 content hash (checked on load, so a file corrupted without changing its size is
    detected).

Writing is atomic: the files go to a hidden temporary folder beside the final one, are fsynced,
and the folder is renamed to ``step-<N>``; only then is the ``last`` pointer file (its content is
the folder name) replaced atomically. A crash or kill at any point leaves either the previous
checkpoint as the newest complete one or the new one complete, never a partial folder at a final
path. :func:`latest_checkpoint` trusts ``last`` only when it names a complete folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from neurofm._version import __version__
from neurofm.errors import CheckpointError
from neurofm.fileio import atomic_open, fsync_dir
from neurofm.training.run_folder import (
    LAST_FILE,
    META_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    checkpoint_name,
    checkpoint_step,
)


def plain_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors; tensors sharing memory are copied (safetensors needs it)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for key, value in state.items():
        tensor = value.detach().cpu()
        location = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if location in seen or not tensor.is_contiguous():
            tensor = tensor.contiguous().clone()
        seen.add(location)
        out[key] = tensor
    return out


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """The hex SHA-256 digest of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    checkpoints_dir: str | Path,
    step: int,
    *,
    weights: dict[str, torch.Tensor],
    state: dict[str, Any],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``step-<step>`` under ``checkpoints_dir`` atomically and point ``last`` at it.

    Parameters
    ----------
    checkpoints_dir : path
        The run's ``checkpoints/`` folder (created if needed).
    step : int
        Optimizer step the checkpoint was taken after.
    weights : dict of str to Tensor
        The model's state dict.
    state : dict
        Plain-data training state (tensors, numbers, strings, lists, tuples, dicts).
    meta : dict, optional
        Extra JSON-safe fields for ``meta.json``.

    Returns
    -------
    Path
        The final checkpoint folder.
    """
    checkpoints_dir = Path(checkpoints_dir)
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=checkpoints_dir))
    try:
        save_file(plain_tensors(weights), str(tmp / WEIGHTS_FILE))
        with open(tmp / STATE_FILE, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_file(tmp / WEIGHTS_FILE)
        sizes = {name: (tmp / name).stat().st_size for name in (WEIGHTS_FILE, STATE_FILE)}
        hashes = {name: file_sha256(tmp / name) for name in (WEIGHTS_FILE, STATE_FILE)}
        info = {
            "step": int(step),
            "neurofm_version": __version__,
            "file_sizes": sizes,
            "sha256": hashes,
            **(meta or {}),
        }
        with atomic_open(tmp / META_FILE, "w") as fh:
            json.dump(info, fh, indent=1)
        fsync_dir(tmp)
        if final.exists():  # a re-save of the same step (e.g. end of training): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(checkpoints_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with atomic_open(checkpoints_dir / LAST_FILE, "w") as fh:
        fh.write(final.name + "\n")
    return final


def is_complete(path: str | Path) -> bool:
    """True when ``path`` is a checkpoint folder whose files all exist with the sizes in meta.json."""
    path = Path(path)
    try:
        meta = json.loads((path / META_FILE).read_text())
        sizes = meta["file_sizes"]
        return all((path / name).stat().st_size == size for name, size in sizes.items()) and set(
            sizes
        ) == {WEIGHTS_FILE, STATE_FILE}
    except (OSError, ValueError, KeyError, TypeError):
        return False


def verify_checkpoint(path: str | Path) -> None:
    """Check a checkpoint folder's files against the sizes and SHA-256 hashes in meta.json.

    Checkpoints written before hashes were recorded are checked by size only. Raises
    CheckpointError naming the file whose content differs.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint folder")
    if not is_complete(path):
        raise CheckpointError(
            f"{path}: incomplete checkpoint (meta.json missing or file sizes differ)"
        )
    meta = json.loads((path / META_FILE).read_text())
    hashes = meta.get("sha256")
    if hashes is None:
        return
    if not isinstance(hashes, dict):
        raise CheckpointError(f"{path / META_FILE}: 'sha256' must map file names to hashes")
    for name, expected in hashes.items():
        if name not in (WEIGHTS_FILE, STATE_FILE):
            raise CheckpointError(f"{path / META_FILE}: unexpected file {name!r} in 'sha256'")
        actual = file_sha256(path / name)
        if actual != expected:
            raise CheckpointError(
                f"{path / name}: content does not match its SHA-256 in meta.json (expected "
                f"{str(expected)[:12]}..., found {actual[:12]}...); the file is corrupt"
            )


def list_checkpoints(checkpoints_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders under ``checkpoints_dir``, oldest step first."""
    checkpoints_dir = Path(checkpoints_dir)
    if not checkpoints_dir.is_dir():
        return []
    found = []
    for child in checkpoints_dir.iterdir():
        step = checkpoint_step(child.name)
        if step is not None and child.is_dir() and is_complete(child):
            found.append((step, child))
    return [path for _, path in sorted(found)]


def latest_checkpoint(checkpoints_dir: str | Path) -> Path | None:
    """The checkpoint named by ``last`` if complete, else the newest complete one, else None."""
    checkpoints_dir = Path(checkpoints_dir)
    try:
        name = (checkpoints_dir / LAST_FILE).read_text().strip()
    except OSError:
        name = ""
    if checkpoint_step(name) is not None and is_complete(checkpoints_dir / name):
        return checkpoints_dir / name
    complete = list_checkpoints(checkpoints_dir)
    return complete[-1] if complete else None


def newest_verified_checkpoint(checkpoints_dir: str | Path) -> tuple[Path | None, list[str]]:
    """The checkpoint ``last`` names if it verifies (:func:`verify_checkpoint`), else the newest
    one that does; with one line per checkpoint passed over and why."""
    checkpoints_dir = Path(checkpoints_dir)
    try:
        name = (checkpoints_dir / LAST_FILE).read_text().strip()
    except OSError:
        name = ""
    candidates = list(reversed(list_checkpoints(checkpoints_dir)))
    if checkpoint_step(name) is not None:
        pointed = checkpoints_dir / name
        candidates = [pointed] + [c for c in candidates if c != pointed]
    skipped: list[str] = []
    for folder in candidates:
        try:
            verify_checkpoint(folder)
        except CheckpointError as err:
            skipped.append(str(err))
            continue
        return folder, skipped
    return None, skipped


def prune_checkpoints(checkpoints_dir: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest complete checkpoints (never the one ``last`` names)."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    newest = latest_checkpoint(checkpoints_dir)
    for path in list_checkpoints(checkpoints_dir)[:-keep]:
        if path != newest:
            shutil.rmtree(path, ignore_errors=True)


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, truncated or corrupt file raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a valid safetensors file ({err})") from err


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a training-state file with ``torch.load(weights_only=True)``.

    A file holding anything but plain data (for example a pickle that would run code) is refused
    with a CheckpointError before any of it executes.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: training state file is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than plain tensors and "
            f"numbers, which could run code ({str(err).splitlines()[0]})"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read training state ({err})") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: training state must be a dict, got {type(state).__name__}")
    return state


def load_checkpoint(
    path: str | Path,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Read a checkpoint folder: ``(weights, state, meta)``; problems raise CheckpointError."""
    path = Path(path)
    verify_checkpoint(path)
    meta = json.loads((path / META_FILE).read_text())
    return load_weights(path / WEIGHTS_FILE), load_state(path / STATE_FILE), meta
