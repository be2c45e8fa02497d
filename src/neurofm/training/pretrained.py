"""The model hub form of any registered model: ``config.json`` + ``model.safetensors``.

``save_pretrained(model, dir)`` writes::

    config.json         {"name": <registry name>, "config": {<config fields>}, "neurofm_version": ...,
                         "sha256": {"model.safetensors": <hash>}}
    model.safetensors   the model's state_dict

and ``from_pretrained(dir)`` rebuilds the model from the registry, checks the weights' hash (a
copy cut short or altered is refused, naming the file; folders saved before hashes were
written load without the check) and loads the weights (strict). Both files are written
atomically; nothing is ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save
from torch import nn

from neurofm._version import __version__
from neurofm.config import to_dict
from neurofm.errors import CheckpointError, ConfigError
from neurofm.fileio import atomic_open, write_json_atomic
from neurofm.registry import MODELS, create
from neurofm.training.checkpoint import file_sha256, load_weights, plain_tensors
from neurofm.training.run_folder import WEIGHTS_FILE

CONFIG_FILE = "config.json"


def registry_name(model: nn.Module) -> str:
    """The name ``model``'s class is registered under in ``MODELS``."""
    name = getattr(model, "registry_name", None)
    if name is not None:
        return str(name)
    for entry in MODELS.entries():
        if entry.obj is type(model):
            return entry.name
    raise CheckpointError(
        f"{type(model).__name__} is not a registered model; register it with "
        "@MODELS.register(name, config=...) to save it"
    )


def save_pretrained(model: nn.Module, directory: str | Path) -> Path:
    """Write ``model`` as ``config.json`` + ``model.safetensors`` into ``directory``.

    Parameters
    ----------
    model : nn.Module
        A model built from the registry (it has a dataclass ``config``).
    directory : path
        Created if needed.

    Returns
    -------
    Path
        ``directory``.
    """
    directory = Path(directory)
    name = registry_name(model)
    config: Any = getattr(model, "config", None)
    if config is None:
        raise CheckpointError(f"model {name!r} has no `config` attribute to save")
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_open(directory / WEIGHTS_FILE, "wb") as fh:
        fh.write(save(plain_tensors(model.state_dict())))
    write_json_atomic(
        directory / CONFIG_FILE,
        {
            "name": name,
            "config": to_dict(config),
            "neurofm_version": __version__,
            "sha256": {WEIGHTS_FILE: file_sha256(directory / WEIGHTS_FILE)},
        },
    )
    return directory


def read_model_config(directory: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a saved model; errors name the file."""
    path = Path(directory) / CONFIG_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: no saved model here") from err
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(meta, dict) or "name" not in meta or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: needs the fields 'name' and 'config'")
    return meta


def from_pretrained(directory: str | Path) -> nn.Module:
    """Rebuild a model saved by :func:`save_pretrained` (in train mode, on the CPU)."""
    directory = Path(directory)
    meta = read_model_config(directory)
    try:
        model = create(MODELS, {"name": meta["name"], **meta["config"]}, key="model")
    except ConfigError as err:
        raise CheckpointError(f"{directory / CONFIG_FILE}: {err}") from err
    expected = (meta.get("sha256") or {}).get(WEIGHTS_FILE)
    if expected is not None:
        try:
            actual = file_sha256(directory / WEIGHTS_FILE)
        except FileNotFoundError as err:
            raise CheckpointError(f"{directory / WEIGHTS_FILE}: missing") from err
        if actual != expected:
            raise CheckpointError(
                f"{directory / WEIGHTS_FILE}: sha256 {actual[:12]}... differs from "
                f"{expected[:12]}... recorded in {CONFIG_FILE} (the file was cut short or changed "
                "after saving)"
            )
    weights = load_weights(directory / WEIGHTS_FILE)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"{directory / WEIGHTS_FILE}: weights do not fit model {meta['name']!r}: {err}"
        ) from err
    return model
