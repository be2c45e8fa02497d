"""``neurofm fit`` on the command line: config file, dotted overrides, resume, clean errors."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from _tiny import forecast_config, make_store  # noqa: E402

from neurofm.cli.main import main  # noqa: E402


def test_fit_command_with_overrides_and_resume(tmp_path, capsys):
    store = make_store(tmp_path / "store", n_times=600)
    config = forecast_config(store.root, tmp_path / "run")
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    assert (
        main(["fit", "--config", str(path), "--trainer.max_steps", "3", "--model.d_model", "4"])
        == 0
    )
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 3 and saved["model"]["d_model"] == 4
    assert "run folder:" in capsys.readouterr().out
    # A longer run continues from the checkpoint at step 3.
    assert (
        main(
            [
                "fit",
                "--config",
                str(path),
                "--trainer.max_steps",
                "5",
                "--model.d_model",
                "4",
                "--resume",
                "true",
            ]
        )
        == 0
    )
    assert (tmp_path / "run" / "checkpoints" / "step-5").is_dir()


def test_fit_command_reports_every_problem_without_traceback(tmp_path, capsys):
    store = make_store(tmp_path / "store", n_times=600)
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(forecast_config(store.root, tmp_path / "run")))
    code = main(["fit", "--config", str(path), "--model.n_layer", "3", "--trainer.seed", "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "model.n_layer: unknown key" in err and "did you mean 'n_layers'" in err
    assert "trainer.seed: expected int" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()
