"""``neurofm list``: the models table in docs/models.md is generated from the registry."""

from __future__ import annotations

import re
from pathlib import Path

from neurofm.cli.listing import models_markdown
from neurofm.cli.main import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
SECTION = re.compile(r"<!-- models-table:start[^\n]*-->\n(.*?)<!-- models-table:end -->", re.S)


def test_models_table_in_the_docs_is_current():
    match = SECTION.search(DOC.read_text())
    assert match, f"{DOC}: no models-table markers"
    assert match.group(1) == models_markdown(), (
        "docs/models.md is out of date: paste the output of `neurofm list --markdown` "
        "between its models-table markers"
    )


def test_list_markdown_prints_one_row_per_registered_model(capsys):
    from neurofm.registry import MODELS

    assert main(["list", "--markdown"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == MODELS.names()


def test_list_names_aliases(capsys):
    assert main(["list", "--kind", "models"]) == 0
    out = capsys.readouterr().out
    assert "gpt2meg_trf" in out and "conv_forecaster" in out


STEPS_DOC = DOC.parent / "preprocessing.md"
STEPS_SECTION = re.compile(r"<!-- steps-table:start[^\n]*-->\n(.*?)<!-- steps-table:end -->", re.S)


def test_preprocessing_steps_are_listed_and_documented(capsys):
    from neurofm.cli.listing import steps_markdown
    from neurofm.preprocessing import STEPS

    match = STEPS_SECTION.search(STEPS_DOC.read_text())
    assert match, f"{STEPS_DOC}: no steps-table markers"
    assert match.group(1) == steps_markdown(), (
        "docs/preprocessing.md is out of date: paste the output of "
        "`neurofm list --kind preprocessing --markdown` between its steps-table markers"
    )
    assert main(["list", "--kind", "preprocessing"]) == 0
    out = capsys.readouterr().out
    assert f"preprocessing ({len(STEPS.names())}):" in out
    assert "bandpass" in out and "l_freq=None, h_freq=None" in out
