"""R17 and R19: a resumed run keeps its metrics history; checkpoints carry a content hash;
an unreadable ``last`` is passed over and the report names the checkpoint actually used."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from _tiny import forecast_config

from neurofm.config import build_config
from neurofm.errors import CheckpointError
from neurofm.evaluation.evaluate import EvaluateConfig, evaluate_run
from neurofm.training.checkpoint import load_checkpoint, save_checkpoint, verify_checkpoint
from neurofm.training.fit import fit
from neurofm.training.run import load_run


def _steps(run_dir):
    with open(run_dir / "metrics.csv", newline="") as fh:
        return [int(r["step"]) for r in csv.DictReader(fh) if r.get("train/loss")]


def _flip_byte(path, offset_from_end=3):
    """Change one byte near the end of ``path``: same size, different content."""
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def resumed_run(tiny_store, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("history") / "run"
    sections = {"output": {"checkpoint_every_n_steps": 2, "keep_checkpoints": 3}}
    fit(forecast_config(tiny_store.root, run_dir, trainer={"max_steps": 4}, **sections))
    fit(
        forecast_config(tiny_store.root, run_dir, trainer={"max_steps": 6}, **sections),
        resume=True,
    )
    return run_dir


def test_resume_appends_metrics(resumed_run):
    # R19: the rows logged before the interruption are kept, none is repeated
    assert _steps(resumed_run) == list(range(6))


def test_row_logged_after_the_checkpoint_hook_survives_a_kill(tiny_store, tmp_path):
    # Lightning writes the row of the batch that reached a checkpoint after the checkpoint hook;
    # a run killed in between resumes from that checkpoint without the row: it travels in the
    # checkpoint and is written back on resume
    run_dir = tmp_path / "run"
    sections = {"output": {"checkpoint_every_n_steps": 2, "keep_checkpoints": 3}}
    fit(forecast_config(tiny_store.root, run_dir, trainer={"max_steps": 2}, **sections))
    path = run_dir / "metrics.csv"
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    lost = next(r for r in rows if r["step"] == "1")
    with open(path, "w", newline="") as fh:  # the state a kill before the row's write leaves
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(r for r in rows if r["step"] != "1")
    fit(
        forecast_config(tiny_store.root, run_dir, trainer={"max_steps": 4}, **sections),
        resume=True,
    )
    assert _steps(run_dir) == [0, 1, 2, 3]
    with open(path, newline="") as fh:
        back = next(r for r in csv.DictReader(fh) if r["step"] == "1")
    assert float(back["train/loss"]) == pytest.approx(float(lost["train/loss"]))


def test_checkpoint_meta_holds_sha256_and_same_size_corruption_is_caught(tmp_path):
    import torch

    weights = {"w": torch.arange(64, dtype=torch.float32)}
    folder = save_checkpoint(tmp_path, 3, weights=weights, state={"step": 3})
    meta = json.loads((folder / "meta.json").read_text())
    assert set(meta["sha256"]) == {"model.safetensors", "state.pt"}
    verify_checkpoint(folder)
    size = (folder / "model.safetensors").stat().st_size
    _flip_byte(folder / "model.safetensors")
    assert (folder / "model.safetensors").stat().st_size == size
    with pytest.raises(CheckpointError, match="SHA-256") as err:
        load_checkpoint(folder)
    assert "model.safetensors" in str(err.value)


def test_unreadable_last_falls_back_and_is_named(resumed_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(resumed_run, run_dir)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace(str(resumed_run), str(run_dir)))
    assert (run_dir / "checkpoints" / "last").read_text().strip() == "step-6"
    _flip_byte(run_dir / "checkpoints" / "step-6" / "model.safetensors")
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_run(run_dir, checkpoint="step-6")
    with pytest.warns(UserWarning, match="used step-4"):
        run = load_run(run_dir, checkpoint="last")
    assert run.checkpoint == "step-4"
    cfg = build_config(EvaluateConfig, {"preset": "smoke", "split": "val"})
    with pytest.warns(UserWarning, match="used step-4"):
        result = evaluate_run(run_dir, config=cfg, out_dir=tmp_path / "eval", checkpoint="last")
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["checkpoint"] == "step-4" and report["checkpoint_requested"] == "last"
    assert any("step-6" in w for w in report["warnings"])
    assert "step-4" in (tmp_path / "eval" / "report.html").read_text()
    assert result.report["checkpoint"] == "step-4"
