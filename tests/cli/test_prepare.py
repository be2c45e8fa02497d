"""``neurofm prepare`` through the command line: recipe, config file, overrides, R12 errors."""

from __future__ import annotations

import shutil

import yaml

from neurofm.cli.main import main
from neurofm.data.store import PreparedStore


def test_recipe_in_one_command_then_config_file_with_overrides(tmp_path, capsys):
    out = tmp_path / "sample"
    assert main(["prepare", "--recipe", "eegbci_sample", "--output", str(out)]) == 0
    store = PreparedStore.open(out)
    assert [r.id for r in store.recordings] == [
        "S001R03",
        "S001R04",
        "S001R07",
        "S001R08",
        "S001R12",
    ]
    assert store.manifest["splits"]["test"] == [{"recording": "S001R12", "start": 0, "stop": 20000}]
    assert "prepared 5 recordings" in capsys.readouterr().out
    resolved = yaml.safe_load((out / "prepare_config.yaml").read_text())
    assert resolved["splits"]["assign"]["val"] == ["S001R08"]

    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(store["S001R03"].source["path"], raw)
    shutil.copy(store["S001R12"].source["path"], raw)
    config = tmp_path / "prep.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "inputs": [str(raw / "*.edf")],
                "output": str(tmp_path / "ignored"),
                "preprocessing": [{"name": "lowpass", "h_freq": 30.0}],
                "splits": {"by": "time", "window": 1.0, "fractions": {"train": 0.8, "test": 0.2}},
                "scaler": None,  # in the file: no scaler (not "not given")
            }
        )
    )
    out2 = tmp_path / "custom"
    code = main(
        [
            "prepare",
            str(config),
            "--output",
            str(out2),
            "--jobs",
            "1",
            "--splits.window",
            "2.0",
        ]
    )
    assert code == 0
    store2 = PreparedStore.open(out2)
    assert len(store2) == 2 and "scaler" not in store2.manifest
    assert store2.manifest["split_policy"]["window_s"] == 2.0
    assert yaml.safe_load((out2 / "prepare_config.yaml").read_text())["scaler"] is None


def test_config_errors_exit_2_with_key_paths(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "inputs": ["x.edf"],
                "output": str(tmp_path / "out"),
                "preprocessing": [{"name": "bandpass", "l_freq": 1.0, "h_fre": 30.0}],
                "splits": {"by": "recordings"},
            }
        )
    )
    assert main(["prepare", str(config)]) == 2
    err = capsys.readouterr().err
    assert "preprocessing[0].h_fre: unknown key" in err and "did you mean 'h_freq'" in err
    assert "splits.by: invalid value 'recordings'" in err
    assert "Traceback" not in err
    assert main(["prepare", "--recipe", "eegbci_smple", "--output", str(tmp_path / "o")]) == 2
    assert "did you mean 'eegbci_sample'" in capsys.readouterr().err
