"""R7 in production: a run records its training channels; ``load_run(run, store=other)`` reads
reordered channels by name (identical windows and output) and refuses missing or renamed ones,
listing them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from _tiny import N_CHANS, forecast_config, make_store

from neurofm.data.recording import Recording
from neurofm.data.store import PreparedStore
from neurofm.errors import ChannelMismatchError
from neurofm.training.fit import fit
from neurofm.training.run import load_run
from neurofm.types import SensorInfo


def _variant(source: PreparedStore, root, order, names=None) -> PreparedStore:
    """A copy of ``source`` with its channels in ``order`` (and renamed to ``names``)."""
    store = PreparedStore.create(root, name="variant")
    for rec in source.recordings:
        data = np.load(rec.path, mmap_mode="r")  # (T, C) time-major
        stored = source[rec.id]
        sensors = SensorInfo(
            names=names or [stored.sensors.names[i] for i in order],
            types=[stored.sensors.types[i] for i in order],
        )
        recording = Recording(
            data=np.ascontiguousarray(np.asarray(data).T[order]),
            sfreq=rec.sfreq,
            sensors=sensors,
            events=stored.events,
            subject=stored.subject,
            session=stored.session,
            source=stored.source,
        )
        store.write(rec.id, recording, fingerprint="variant")
    store.manifest["splits"] = source.manifest["splits"]
    store.save_manifest()
    return PreparedStore.open(root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("channels")
    store = make_store(root / "store", n_times=600)
    run_dir = fit(forecast_config(store.root, root / "run", trainer={"max_steps": 2}))
    return store, run_dir, root


def test_run_records_channels_and_reordered_store_gives_same_output(trained):
    store, run_dir, root = trained
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["channels"] == [f"C{i}" for i in range(N_CHANS)]
    reversed_store = _variant(store, root / "reversed", list(range(N_CHANS))[::-1])
    assert reversed_store.recordings[0].sensors.names[0] == f"C{N_CHANS - 1}"
    base = load_run(run_dir)
    other = load_run(run_dir, store=reversed_store.root)
    x_base = base.dataset("val")[0]["x"]
    x_other = other.dataset("val")[0]["x"]
    assert torch.equal(x_base, x_other)
    with torch.no_grad():
        out_base = base.model(x_base[None]).prediction
        out_other = other.model(x_other[None]).prediction
    assert torch.equal(out_base, out_other)


def test_missing_or_renamed_channels_are_listed(trained):
    store, run_dir, root = trained
    renamed = _variant(
        store, root / "renamed", list(range(N_CHANS)), names=["C0", "C1", "C2", "Cz"]
    )
    with pytest.raises(ChannelMismatchError, match=r"missing 1 expected channel\(s\): \['C3'\]"):
        load_run(run_dir, store=renamed.root)
    fewer = _variant(store, root / "fewer", [0, 1, 2])
    with pytest.raises(ChannelMismatchError, match=r"\['C3'\]") as err:
        load_run(run_dir, store=fewer.root)
    assert str(run_dir) in str(err.value)
