"""R15 for run folders: a second writer of a run folder gets an error naming the holder."""

from __future__ import annotations

import os

import pytest
from _tiny import forecast_config

from neurofm.errors import FolderLockedError
from neurofm.fileio import folder_lock
from neurofm.training.fit import fit


def test_r15_fit_into_a_locked_run_folder_names_the_holder(tiny_store, tmp_path):
    run_dir = tmp_path / "run"
    with folder_lock(run_dir, command="neurofm fit"):
        with pytest.raises(FolderLockedError, match=f"process id {os.getpid()}, neurofm fit"):
            fit(forecast_config(tiny_store.root, run_dir))
    assert not (run_dir / "config.yaml").exists()
