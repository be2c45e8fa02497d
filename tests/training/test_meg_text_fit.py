"""``neurofm fit`` of the MEG-to-text model on text segments: the training modes, the phase
schedule and exact resume inside and across phases."""

from __future__ import annotations

import pytest
import torch
from _runs import final_weights, step_losses

pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("vector_quantize_pytorch")

from neurofm.training.checkpoint import latest_checkpoint  # noqa: E402
from neurofm.training.fit import fit  # noqa: E402


def meg_text_config(store, run_dir, *, mode="multi_phase", max_steps=9) -> dict:
    return {
        "data": {
            "store": str(store),
            "format": "text_segments",
            "words_per_segment": 4,
            "window_seconds": 2.4,
            "batch_size": 8,
        },
        "model": {"name": "meg_text", "preset": "tiny", "n_chans": 8, "vocab_size": 128},
        "objective": {"name": "meg_text", "mode": mode, "phase_steps": [3, 3, 100]},
        "optim": {"lr": 3e-3},
        "trainer": {
            "max_steps": max_steps,
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
            "val_check_interval": 4,
            "limit_val_batches": 1,
        },
        "output": {"dir": str(run_dir), "checkpoint_every_n_steps": 2},
    }


class _Stop(Exception):
    pass


class _StopAfter:
    """A callback that stops the process's fit right after the checkpoint of ``step``."""

    def __new__(cls, step: int):
        import lightning.pytorch as pl

        class StopAfter(pl.Callback):
            def on_train_batch_end(self, trainer, *args) -> None:  # noqa: ANN001
                if trainer.global_step == step:
                    raise _Stop

        return StopAfter()


def test_multi_phase_resume_equals_uninterrupted_run(masc_like, tmp_path):
    reference = fit(meg_text_config(masc_like, tmp_path / "reference"))
    phases = {}
    import csv

    with open(reference / "metrics.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("train/phase"):
                phases[int(row["step"])] = int(float(row["train/phase"]))
    assert phases == {s: 1 if s < 3 else 2 if s < 6 else 3 for s in range(9)}
    assert (reference / "text_tokenizer" / "text_tokenizer.json").is_file()

    run_dir = tmp_path / "stopped"
    config = meg_text_config(masc_like, run_dir)
    with pytest.raises(_Stop):
        fit(config, callbacks=[_StopAfter(4)])  # inside phase 2, before phase 3 starts
    assert latest_checkpoint(run_dir / "checkpoints").name == "step-4"
    fit(config, resume=True)
    expected, got = step_losses(reference), step_losses(run_dir)
    assert {s: got[s] for s in got} == {s: expected[s] for s in got}
    ref_w, got_w = final_weights(reference), final_weights(run_dir)
    assert ref_w.keys() == got_w.keys()
    for key in ref_w:
        assert torch.equal(ref_w[key], got_w[key]), key
