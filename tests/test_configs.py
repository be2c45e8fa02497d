"""Every YAML in configs/ is validated by the command its folder names (STYLE rule 13).

Layout: ``configs/prepare/*.yaml`` (``neurofm prepare``), ``configs/tokenize/*.yaml``
(``neurofm tokenize``), ``configs/evaluate/*.yaml`` (``neurofm evaluate``) and
``configs/fit/<family>/*.yaml`` (``neurofm fit``), where ``<family>`` is the family of the
registered model the file trains: a stem its registered name contains (``gpt2meg`` for
``gpt2meg_trf`` and ``stgpt2meg``, ``classifier`` for ``classifier_continuous``). A YAML anywhere
else fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neurofm.config import build_config, load_yaml

ROOT = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(p for p in ROOT.rglob("*") if p.suffix in (".yaml", ".yml"))
KINDS = ("prepare", "tokenize", "fit", "evaluate")


def kind_of(path: Path) -> str | None:
    """The command that reads ``path``, from its folder; None when it lies elsewhere."""
    parts = path.relative_to(ROOT).parts
    if len(parts) == 2 and parts[0] in KINDS and parts[0] != "fit":
        return parts[0]
    if len(parts) == 3 and parts[0] == "fit":
        return "fit"
    return None


def _validate_evaluate(data: dict, source: str) -> None:
    from neurofm.evaluation.evaluate import EvaluateConfig

    extra = sorted(set(data) - {"evaluation", "split", "output", "checkpoint"})
    assert not extra, f"{source}: unknown top-level keys {extra}"
    assert "evaluation" in data, f"{source}: no evaluation section"
    build_config(EvaluateConfig, data["evaluation"], prefix="evaluation", source=source)


def _validate_prepare(data: dict, source: str) -> None:
    from neurofm.data.prepare import resolve_config

    resolve_config(data, source=source)


def _validate_fit(data: dict, source: str) -> None:
    from neurofm.registry import MODELS
    from neurofm.training.config import validate_fit_config

    # the file is checked alone: a GPU config is valid on a CPU machine until it is run
    validate_fit_config(data, source=source, hardware=False)
    family = Path(source).parent.name
    name = data["model"]["name"]
    names = {name, MODELS.get(name).alias_of or name}
    assert any(family in n for n in names), (
        f"{source}: model {name!r} is not of family {family!r} (the folder it lies in)"
    )


def _validate_tokenize(data: dict, source: str) -> None:
    from neurofm.evaluation.tokenizer_report import ReportConfig, TokenizeDataConfig
    from neurofm.registry import TOKENIZERS, create

    extra = sorted(set(data) - {"data", "tokenizer", "report", "output"})
    assert not extra, f"{source}: unknown top-level keys {extra}"
    build_config(TokenizeDataConfig, data.get("data") or {}, prefix="data", source=source)
    build_config(ReportConfig, data.get("report") or {}, prefix="report", source=source)
    create(TOKENIZERS, data["tokenizer"], key="tokenizer")


VALIDATORS = {
    "evaluate": _validate_evaluate,
    "prepare": _validate_prepare,
    "fit": _validate_fit,
    "tokenize": _validate_tokenize,
}


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("kind", KINDS)
def test_every_command_has_configs(kind):
    assert any(kind_of(p) == kind for p in CONFIGS), f"configs/{kind}/ holds no YAML file"


def test_no_config_lies_outside_the_command_folders():
    misplaced = [_id(p) for p in CONFIGS if kind_of(p) is None]
    assert not misplaced, (
        f"YAML files outside configs/{{prepare,tokenize,evaluate}}/ and "
        f"configs/fit/<family>/: {misplaced}"
    )


@pytest.mark.parametrize("path", CONFIGS, ids=_id)
def test_config_is_valid(path):
    kind = kind_of(path)
    if kind is None:
        pytest.skip("misplaced; reported by test_no_config_lies_outside_the_command_folders")
    VALIDATORS[kind](load_yaml(path), str(path))


def test_fit_config_errors_name_the_file_and_key():
    from neurofm.errors import ConfigError
    from neurofm.training.config import validate_fit_config

    first = next(p for p in CONFIGS if kind_of(p) == "fit")
    data = load_yaml(first)
    data["model"]["n_layerz"] = 2
    with pytest.raises(ConfigError, match=rf"{first.name}.*\n.*model.n_layerz: unknown key"):
        validate_fit_config(data, source=str(first))
