"""R16: a read-only, misplaced or full output folder gives one error naming the path, exit 2, no
traceback, raised before the long work starts (prepare, fit, evaluate, generate, benchmark, demo).

Tests run as root in some places, where a chmod'ed folder stays writable; the read-only and full
filesystems are then simulated at the OS boundary (the write probe and ``disk_usage``)."""

from __future__ import annotations

import errno
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from _tiny import forecast_config, make_store  # noqa: E402

from neurofm import fileio  # noqa: E402
from neurofm.cli.main import main  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "eegbci_S001"


def _read_only(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", refuse)


def _full(monkeypatch):
    monkeypatch.setattr(
        fileio.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1024)
    )


def _no_work(monkeypatch, target, name):
    def must_not_run(*args, **kwargs):
        raise AssertionError(f"{name} ran although the output cannot be written")

    monkeypatch.setattr(target, name, must_not_run)


def _check(code, err, path):
    assert code == 2, err
    assert "Traceback" not in err and str(path) in err


def test_fit_output_below_a_file_and_read_only(tmp_path, capsys, monkeypatch):
    store = make_store(tmp_path / "store", n_times=600)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = tmp_path / "fit.yaml"
    config.write_text(yaml.safe_dump(forecast_config(store.root, blocker / "run")))
    import neurofm.training.fit as fit_module

    _no_work(monkeypatch, fit_module.PreparedStore, "open")
    code = main(["fit", "--config", str(config)])
    err = capsys.readouterr().err
    _check(code, err, blocker / "run")
    assert "is a file, not a folder" in err

    config.write_text(yaml.safe_dump(forecast_config(store.root, tmp_path / "run")))
    _read_only(monkeypatch)
    code = main(["fit", "--config", str(config)])
    err = capsys.readouterr().err
    _check(code, err, tmp_path / "run")
    assert "Read-only file system" in err and not (tmp_path / "run").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_prepare_into_a_chmod_read_only_folder(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = main(["prepare", "--recipe", "eegbci_sample", "--output", str(locked / "s")])
    finally:
        locked.chmod(0o755)
    _check(code, capsys.readouterr().err, locked / "s")


def test_prepare_into_a_full_folder(tmp_path, capsys, monkeypatch):
    import neurofm.data.prepare as prepare_module

    _full(monkeypatch)
    _no_work(monkeypatch, prepare_module, "find_inputs")
    out = tmp_path / "store"
    code = main(["prepare", "--inputs", str(SAMPLE / "*.edf"), "--output", str(out)])
    err = capsys.readouterr().err
    _check(code, err, out)
    assert "MB free" in err and not out.exists()


def test_evaluate_and_generate_fail_before_scoring(tmp_path, capsys, monkeypatch):
    import neurofm.training.run as run_module

    _no_work(monkeypatch, run_module, "load_run")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["evaluate", str(tmp_path / "run"), "--output", str(blocker / "eval")])
    _check(code, capsys.readouterr().err, blocker / "eval")
    code = main(["generate", str(tmp_path / "run"), "--output", str(blocker / "gen")])
    _check(code, capsys.readouterr().err, blocker / "gen")


def test_demo_and_benchmark_outputs_checked_first(tmp_path, capsys, monkeypatch):
    import neurofm.data.recipes as recipes

    _no_work(monkeypatch, recipes, "prepare_recipe")
    _read_only(monkeypatch)
    for command in ("demo", "benchmark"):
        out = tmp_path / command
        code = main([command, "--output", str(out)])
        _check(code, capsys.readouterr().err, out)


def test_a_write_failing_during_the_work_exits_2_naming_the_file(capsys, monkeypatch):
    import neurofm.data.prepare as prepare_module

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/rec0/data.f32")

    monkeypatch.setattr(prepare_module, "prepare", disk_full)
    code = main(["prepare", "--inputs", "x.edf", "--output", "out"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "cannot write '/data/out/rec0/data.f32': No space left on device" in err
