"""``neurofm prepare``: raw recordings -> preprocessing -> prepared store, splits, scaler.

A config (YAML or dict) names the inputs, the preprocessing steps, the output folder, the split
policy and the scaler::

    inputs: [data/sample/eegbci_S001/*.edf]     # files / globs, or {bids_root: ..., subjects: [..]}
    preprocessing:
      - {name: notch, freqs: [60]}
      - {name: bandpass, l_freq: 0.5, h_freq: 40}
    output: prepared/eegbci
    splits: {by: recording, assign: {train: [S001R03], val: [S001R08], test: [S001R12]}, window: 2.0}
    scaler: {kind: robust, max_samples: 1000000}   # or null
    jobs: 2
    reader: {data_format: int16}          # read_recording options (CNT sample width, .npy
                                          # sfreq / ch_types, allow_truncated, ...)
    channel_policy: same                  # same | intersect | keep (inputs' channel sets)

An input folder stands for its recordings (:mod:`neurofm.data.prepare_sources` finds them;
:mod:`neurofm.data.prepare_inputs` also checks channel sets and the split policy before anything
is written).

or ``recipe: eegbci_sample`` (a registered recipe supplies the sections; keys given beside it
override the recipe's). Preparing is idempotent and resumable: a recording whose source sha256 and
pipeline fingerprint match the store is skipped. Recordings run in parallel in a process pool,
each worker holding one recording (and exiting when the parent process dies); the store keeps
signals in physical units and records the scaler (fitted on the train split only) in
``manifest["scaler"]``.

One ``prepare`` at a time writes a store: it holds the folder's lock (another run gets an error
naming the holder), removes the temporaries an interrupted run left, and keeps ``incomplete.json``
in the folder until it has finished, so that readers refuse a half-prepared store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from concurrent.futures import (
    FIRST_EXCEPTION,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from neurofm.config import build_config, load_yaml, save_yaml, to_dict
from neurofm.data.prepare_guard import mark_incomplete, watch_parent
from neurofm.data.prepare_inputs import channel_sets, reader_problems, split_hint
from neurofm.data.prepare_sources import BidsInputs, Source, find_inputs
from neurofm.data.prepare_splits import SplitConfig, compute_splits
from neurofm.data.recording import sha256_file
from neurofm.data.store import INCOMPLETE, MANIFEST, PreparedStore, StoredRecording
from neurofm.errors import ConfigError
from neurofm.fileio import (
    check_writable,
    folder_lock,
    fsync_dir,
    remove_stale_temporaries,
    write_json_atomic,
)
from neurofm.io import read_recording
from neurofm.logging import get_logger
from neurofm.preprocessing import Pipeline, RobustScaler
from neurofm.registry import DATASETS, create

log = get_logger("prepare")

RESOLVED_CONFIG = "prepare_config.yaml"
"""Name of the resolved config written into the output folder."""

STAGING = ".staging"
"""Folder under the output where workers write a recording before it is moved into place."""


@dataclass
class ScalerConfig:
    """Per-channel scaling statistics fitted on the train split."""

    kind: Literal["robust"] = "robust"  # median / interquartile range
    max_samples: int = 1_000_000  # time samples per channel used for the fit (strided)

    def __post_init__(self) -> None:
        if self.max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {self.max_samples}")


@dataclass
class PrepareConfig:
    """A resolved ``neurofm prepare`` config."""

    output: str  # the prepared store's folder
    inputs: list[str] | BidsInputs  # files / glob patterns, or a BIDS selection
    preprocessing: list[dict[str, Any]] = field(default_factory=list)  # steps, in order
    splits: SplitConfig = field(default_factory=SplitConfig)  # split policy
    scaler: ScalerConfig | None = field(default_factory=ScalerConfig)  # None: no scaler
    name: str | None = None  # dataset name (default: the output folder's name)
    jobs: int = 1  # recordings prepared in parallel (process pool)
    reader: dict[str, Any] | None = None  # options of read_recording, e.g. {sfreq: 250}
    channel_policy: Literal["same", "intersect", "keep"] = "same"  # inputs' channel sets

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {self.jobs}")


def recipe_config(recipe: str | Mapping[str, Any]) -> dict[str, Any]:
    """The prepare-config sections of ``recipe`` (a name, or ``{"name": ..., <options>}``).

    Recipes are looked up in the ``DATASETS`` registry (``neurofm.data.recipes`` registers the
    shipped ones), so this module never imports them.
    """
    spec = {"name": recipe} if isinstance(recipe, str) else dict(recipe)
    config = create(DATASETS, spec, key="recipe")
    if not isinstance(config, dict):
        raise ConfigError(f"recipe: {spec.get('name')!r} is not a prepare recipe")
    return config


def resolve_config(data: Mapping[str, Any], *, source: str | None = None) -> PrepareConfig:
    """Validate a config dict (after merging its ``recipe``) into a :class:`PrepareConfig`.

    Raises one ConfigError listing every problem with its key path.
    """
    data = dict(data)
    recipe = data.pop("recipe", None)
    if recipe is not None:
        base = recipe_config(recipe)
        data = {**base, **data}
    problems: list[str] = []
    inputs = data.get("inputs")
    if isinstance(inputs, str):
        data["inputs"] = [inputs]
    elif isinstance(inputs, Mapping):
        try:
            data["inputs"] = build_config(BidsInputs, inputs, prefix="inputs")
        except ConfigError as err:
            problems.extend(err.problems)
            data.pop("inputs")
    try:
        Pipeline.from_config(data.get("preprocessing"))
    except ConfigError as err:
        problems.extend(err.problems)
    if isinstance(data.get("reader"), Mapping):
        problems.extend(reader_problems(data["reader"]))
    try:
        cfg = build_config(PrepareConfig, data, source=source)
    except ConfigError as err:
        problems.extend(p for p in err.problems if not p.startswith("preprocessing"))
    if problems:
        raise ConfigError(problems, source=source)
    return cfg


def load_config(path: str | Path) -> PrepareConfig:
    """Read and validate a prepare config YAML; errors name the file and key paths."""
    return resolve_config(load_yaml(path), source=str(path))


def prepare(
    config: PrepareConfig | Mapping[str, Any], *, source: str | None = None
) -> PreparedStore:
    """Prepare a dataset: read, preprocess and store every input, then split and fit the scaler.

    Parameters
    ----------
    config : PrepareConfig or dict
        The config (a dict is validated with :func:`resolve_config`).
    source : str or None
        Where the config came from, named in errors.

    Returns
    -------
    PreparedStore
        The store at ``config.output`` with ``manifest["splits"]``, ``["split_policy"]`` and
        (unless ``scaler`` is None) ``["scaler"]``.
    """
    cfg = config if isinstance(config, PrepareConfig) else resolve_config(config, source=source)
    check_writable(cfg.output, what="output")
    pipeline = Pipeline.from_config(cfg.preprocessing, source=source)
    fingerprint = pipeline.fingerprint()
    reader = {k: v for k, v in (cfg.reader or {}).items() if v not in (None, False)}
    if reader:
        # another way of reading gives other data: those recordings are prepared again
        fingerprint = hashlib.sha256(f"{fingerprint}:{sorted(reader.items())}".encode()).hexdigest()
    sources = find_inputs(cfg.inputs)
    hint = split_hint(cfg.splits, len(sources))
    if hint:
        raise ConfigError(hint, source=source)
    keep = channel_sets([(s.id, s.path) for s in sources], cfg.reader, cfg.channel_policy)
    if keep is not None:  # another common channel set: every recording is prepared again
        fingerprint = hashlib.sha256(f"{fingerprint}:channels:{keep}".encode()).hexdigest()
    root = Path(cfg.output)
    with folder_lock(root, command="neurofm prepare"):
        for path in remove_stale_temporaries(root) + remove_stale_temporaries(root / "recordings"):
            log.info("removed %s, left by an interrupted run", path)
        mark_incomplete(root)
        try:
            store = _prepare_locked(cfg, pipeline, fingerprint, sources, root, keep)
        except BaseException as err:
            mark_incomplete(root, error=f"{type(err).__name__}: {err}")
            raise
        (root / INCOMPLETE).unlink()
        fsync_dir(root)
    return store


def _prepare_locked(
    cfg: PrepareConfig,
    pipeline: Pipeline,
    fingerprint: str,
    sources: list[Source],
    root: Path,
    keep: list[str] | None,
) -> PreparedStore:
    """The work of :func:`prepare`, run while holding the store's lock (``keep``: the channels
    every recording keeps, or None for all)."""
    store = PreparedStore.create(
        root,
        name=cfg.name,
        fingerprint=fingerprint,
        preprocessing={
            "steps": pipeline.to_config(),
            "fingerprint": fingerprint,
            "filter_phase": pipeline.filter_phase(),
        },
        save=False,
    )
    shutil.rmtree(root / STAGING, ignore_errors=True)
    todo = []
    for src in sources:
        sha = sha256_file(src.path)
        if store.is_current(src.id, sha, fingerprint):
            log.info("%s: up to date, skipped", src.id)
        else:
            todo.append((src, sha))
    log.info("preparing %d of %d recordings into %s", len(todo), len(sources), root)
    tasks = [
        (
            src,
            sha,
            pipeline.to_config(),
            str(root / STAGING),
            fingerprint,
            dict(cfg.reader or {}),
            keep,
        )
        for src, sha in todo
    ]
    # Manifest saves after each recording run in one background thread, in order, while the
    # next recording (or the split and scaler fit) is computed; leaving the block waits for them.
    with ThreadPoolExecutor(max_workers=1) as saver:
        try:
            saves = _run(tasks, store, cfg.jobs, saver)
        finally:
            shutil.rmtree(root / STAGING, ignore_errors=True)
        _forget_stale(store, [s.id for s in sources])
        _finish(store, cfg, saves)
    _write_if_changed(root / RESOLVED_CONFIG, _resolved(cfg))
    return store


def _prepare_one(
    src: Source,
    sha: str,
    steps: list[dict[str, Any]],
    stage: str,
    fingerprint: str,
    reader: dict[str, Any] | None = None,
    channels: list[str] | None = None,
) -> dict[str, Any]:
    """Worker: read, preprocess and write one recording into the staging folder."""
    # The pipeline checks every sample (naming file, channel, sample) while loading it once;
    # flat channels are named by the scaler fit or dropped by a mark_bads step. Skipping the
    # reader's own whole-file scans keeps memory at one recording; the source is hashed once.
    recording = read_recording(
        src.path, nan_policy="ignore", flat_policy="ignore", sha256=sha, **dict(reader or {})
    )
    if channels is not None:  # channel_policy intersect: the channels all inputs share
        recording = recording.pick(channels)
    ids = {k: v for k, v in src.entities.items() if v is not None and getattr(recording, k) is None}
    recording = replace(
        recording, source={**recording.source, "path": src.path, "sha256": sha}, **ids
    )
    prepared = Pipeline.from_config(steps)(recording)
    # Only the array is staged; the store's manifest records it once it is moved into place.
    staged = PreparedStore.create(stage, save=False)
    return staged.write(src.id, prepared, fingerprint=fingerprint, save=False).to_dict()


def _register(
    store: PreparedStore, stage: str, entry: dict[str, Any], saver: ThreadPoolExecutor
) -> Future:
    """Move a staged array into the store and save the manifest naming it (in ``saver``)."""
    os.replace(Path(stage) / entry["file"], store.root / entry["file"])
    stored = StoredRecording.from_dict(store.root, entry)
    store.recordings = [r for r in store.recordings if r.id != stored.id] + [stored]
    # A shallow copy: later steps replace the manifest's top-level values, never edit them.
    manifest = {**store.manifest, "recordings": [r.to_dict() for r in store.recordings]}
    log.info(
        "%s: prepared (%d channels, %d samples at %g Hz)",
        stored.id,
        stored.n_chans,
        stored.n_times,
        stored.sfreq,
    )
    return saver.submit(_save, store.root, manifest)


def _save(root: Path, manifest: dict[str, Any]) -> None:
    """Make the arrays' renames durable, then save the manifest that names them."""
    fsync_dir(root / "recordings")
    write_json_atomic(root / MANIFEST, manifest)


def _run(
    tasks: list[tuple[Any, ...]], store: PreparedStore, jobs: int, saver: ThreadPoolExecutor
) -> list[Future]:
    """Prepare ``tasks`` inline (jobs=1) or in a process pool; each result is registered as it
    arrives, so a failure keeps every recording finished before it. Returns the manifest saves."""
    saves = []
    if jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            saves.append(_register(store, task[3], _prepare_one(*task), saver))
        return saves
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)),
        mp_context=get_context("spawn"),
        initializer=watch_parent,
        initargs=(os.getpid(),),
    ) as pool:
        pending = {pool.submit(_prepare_one, *task): task for task in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            for future in done:
                task = pending.pop(future)
                if future.exception() is None:
                    saves.append(_register(store, task[3], future.result(), saver))
            if failed:
                for other in pending:
                    other.cancel()
                raise failed[0].exception()
    return saves


def _forget_stale(store: PreparedStore, ids: list[str]) -> None:
    """Remove recordings no longer among the inputs (each named in the log)."""
    keep = set(ids)
    for rec in [r for r in store.recordings if r.id not in keep]:
        log.warning("%s: no longer an input, removed from the store", rec.id)
        rec.path.unlink(missing_ok=True)
    order = {rid: i for i, rid in enumerate(ids)}
    store.recordings = sorted(
        (r for r in store.recordings if r.id in keep), key=lambda r: order[r.id]
    )


def _finish(store: PreparedStore, cfg: PrepareConfig, saves: list[Future]) -> None:
    """Compute splits and the scaler, then (after ``saves``) write the manifest if it changed."""
    manifest = store.manifest
    manifest["recordings"] = [r.to_dict() for r in store.recordings]
    segments, policy = compute_splits(manifest, cfg.splits)
    manifest["splits"], manifest["split_policy"] = segments, policy
    if cfg.scaler is None:
        manifest.pop("scaler", None)
    else:
        scaler = RobustScaler().fit(
            store,
            segments=segments.get("train", []),
            max_samples=cfg.scaler.max_samples,
            fitted_on="train",
        )
        manifest["scaler"] = {**scaler.to_dict(), "max_samples": cfg.scaler.max_samples}
    for save in saves:
        save.result()
    path = store.root / MANIFEST
    on_disk = json.loads(path.read_text()) if path.is_file() else None
    if on_disk != json.loads(json.dumps(manifest)):
        store.save_manifest()
    for path in store.prune_unreferenced():
        log.info("removed the superseded array %s", path.name)


def _resolved(cfg: PrepareConfig) -> dict[str, Any]:
    data = to_dict(cfg)
    if isinstance(cfg.inputs, BidsInputs):
        data["inputs"] = to_dict(cfg.inputs)
    return data


def _write_if_changed(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as YAML unless the file already holds the same."""
    if path.is_file() and load_yaml(path) == json.loads(json.dumps(data)):
        return
    save_yaml(data, path)
