"""R14: paths read from a manifest or run folder stay inside their root. R15: one writer per
store (a clear error naming the holder), no orphaned workers, stale temporaries cleaned, an
incomplete store reported as such."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import neurofm.data.prepare as prep
from neurofm.cli.inspect import describe
from neurofm.cli.main import main
from neurofm.data.store import INCOMPLETE, PreparedStore
from neurofm.errors import FolderLockedError, RecordingError, UnsafePathError
from neurofm.fileio import folder_lock
from neurofm.training.checkpoint import latest_checkpoint
from neurofm.training.run import load_run

SRC = str(Path(prep.__file__).resolve().parents[2])


def _config(sample_dir: Path, output: Path, runs=("S001R03",), **changes) -> dict:
    inputs = [str(sample_dir / "eegbci_S001" / f"{run}.edf") for run in runs]
    config = {
        "inputs": inputs,
        "output": str(output),
        "preprocessing": [{"name": "resample", "sfreq": 40}],
        "splits": {"by": "time", "window": 1.0, "fractions": {"train": 0.8, "test": 0.2}},
        "scaler": None,
    }
    return {**config, **changes}


@pytest.fixture
def store_dir(sample_dir, tmp_path) -> Path:
    prep.prepare(_config(sample_dir, tmp_path / "store"))
    return tmp_path / "store"


def _set_file(store_dir: Path, value: str) -> None:
    manifest = json.loads((store_dir / "manifest.json").read_text())
    manifest["recordings"][0]["file"] = value
    (store_dir / "manifest.json").write_text(json.dumps(manifest))


def test_r14_manifest_path_outside_is_refused_and_nothing_deleted(sample_dir, store_dir):
    secret = store_dir.parent.parent / "other" / "secret.txt"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("keep me")
    _set_file(store_dir, "../../other/secret.txt")
    with pytest.raises(UnsafePathError, match=r"recordings\[id='S001R03'\]\.file") as info:
        PreparedStore.open(store_dir)
    assert str(store_dir / "manifest.json") in str(info.value)
    # re-preparing with another input would remove S001R03 (and so the file its entry names)
    with pytest.raises(UnsafePathError):
        prep.prepare(_config(sample_dir, store_dir, runs=("S001R04",)))
    assert secret.read_text() == "keep me"


def test_r14_absolute_manifest_path_is_refused(store_dir, tmp_path):
    _set_file(store_dir, str(tmp_path / "elsewhere.npy"))
    with pytest.raises(UnsafePathError, match="leads outside"):
        PreparedStore.open(store_dir)


def test_r14_symlink_out_of_the_store_is_refused(store_dir, tmp_path):
    outside = tmp_path / "outside.npy"
    outside.write_bytes(b"x")
    link = store_dir / "recordings" / "link.npy"
    link.symlink_to(outside)
    _set_file(store_dir, "recordings/link.npy")
    with pytest.raises(UnsafePathError):
        PreparedStore.open(store_dir)
    assert outside.read_bytes() == b"x"


def test_r14_run_folder_checkpoint_names_stay_inside(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"model": {"name": "x"}, "data": {}}))
    with pytest.raises(UnsafePathError, match="'checkpoint'"):
        load_run(run, checkpoint="../../elsewhere")
    (run / "checkpoints" / "last").write_text("../../elsewhere")
    assert latest_checkpoint(run / "checkpoints") is None


def test_r15_second_prepare_gets_the_lock_error_naming_the_holder(sample_dir, tmp_path, capsys):
    out = tmp_path / "store"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from neurofm.fileio import folder_lock\n"
            f"with folder_lock({str(out)!r}, command='neurofm prepare'):\n"
            "    print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = tmp_path / "prep.yaml"
        config.write_text(yaml.safe_dump(_config(sample_dir, out)))
        assert main(["prepare", str(config)]) == 2
        err = capsys.readouterr().err
        assert f"process id {holder.pid}" in err and "neurofm prepare, started" in err
        assert "Traceback" not in err
        assert not (out / "manifest.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(["prepare", str(config)]) == 0  # the OS released the lock with its holder


def test_r15_lock_is_exclusive_within_a_process_too(tmp_path):
    with folder_lock(tmp_path / "x", command="neurofm prepare"):
        with pytest.raises(FolderLockedError, match=f"process id {os.getpid()}"):
            with folder_lock(tmp_path / "x", command="neurofm prepare"):
                pass


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux only)")
def test_r15_kill_9_of_the_parent_leaves_no_worker(sample_dir, tmp_path):
    config = _config(sample_dir, tmp_path / "store", runs=("S001R03", "S001R04", "S001R07"))
    config["jobs"] = 2
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from neurofm.data.prepare import prepare; prepare({config!r})",
        ],
        env={**os.environ, "PYTHONPATH": SRC},
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
        workers = _children(parent.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the pool did not start"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)]
    report = describe(tmp_path / "store")
    assert report["status"].startswith("INCOMPLETE")


def test_r15_stale_temporaries_are_removed_by_the_next_run(sample_dir, store_dir):
    stale = [store_dir / ".manifest.json.abc123.tmp", store_dir / "recordings" / ".x.npy.tmp"]
    for path in stale:
        path.write_text("left by a killed run")
    prep.prepare(_config(sample_dir, store_dir))
    assert not any(p.exists() for p in stale)


def test_r15_failed_prepare_is_marked_incomplete_and_reported(sample_dir, tmp_path, capsys):
    out = tmp_path / "store"

    def crash(*args):
        raise RuntimeError("disk on fire")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prep, "_prepare_one", crash)
        with pytest.raises(RuntimeError):
            prep.prepare(_config(sample_dir, out))
    assert (out / INCOMPLETE).is_file()
    with pytest.raises(RecordingError, match="incomplete.*disk on fire.*prepare"):
        PreparedStore.open(out)
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "status       INCOMPLETE" in text and "disk on fire" in text
    prep.prepare(_config(sample_dir, out))
    assert not (out / INCOMPLETE).exists()
    assert describe(out)["status"] == "complete"
    assert len(PreparedStore.open(out)) == 1
