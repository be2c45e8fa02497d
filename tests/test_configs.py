"""Every YAML in configs/ is validated by the loader of its kind (STYLE rule 13).

The kind is read from the content: ``evaluation`` -> ``neurofm evaluate``; ``inputs`` or
``recipe`` -> ``neurofm prepare``; ``model`` and ``objective`` -> ``neurofm fit``; ``tokenizer``
with ``report`` or ``data.path`` -> ``neurofm tokenize``. A file of no known kind fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neurofm.config import build_config, load_yaml

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.y*ml"))


def kind_of(data: dict) -> str | None:
    if "evaluation" in data:
        return "evaluate"
    if "inputs" in data or "recipe" in data:
        return "prepare"
    if "model" in data and "objective" in data:
        return "fit"
    if "tokenizer" in data and ("report" in data or "path" in (data.get("data") or {})):
        return "tokenize"
    return None


def _validate_evaluate(data: dict, source: str) -> None:
    from neurofm.evaluation.evaluate import EvaluateConfig

    extra = sorted(set(data) - {"evaluation", "split", "output", "checkpoint"})
    assert not extra, f"{source}: unknown top-level keys {extra}"
    build_config(EvaluateConfig, data["evaluation"], prefix="evaluation", source=source)


def _validate_prepare(data: dict, source: str) -> None:
    from neurofm.data.prepare import resolve_config

    resolve_config(data, source=source)


def _validate_fit(data: dict, source: str) -> None:
    from neurofm.training.config import validate_fit_config

    validate_fit_config(data, source=source)


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


def test_configs_are_found():
    assert CONFIGS, "configs/ holds no YAML file"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_is_valid(path):
    data = load_yaml(path)
    kind = kind_of(data)
    assert kind is not None, (
        f"{path.name}: cannot tell which command reads it (keys {sorted(data)})"
    )
    VALIDATORS[kind](data, str(path))


def test_fit_config_errors_name_the_file_and_key():
    from neurofm.errors import ConfigError
    from neurofm.training.config import validate_fit_config

    fit_configs = [p for p in CONFIGS if kind_of(load_yaml(p)) == "fit"]
    data = load_yaml(fit_configs[0])
    data["model"]["n_layerz"] = 2
    with pytest.raises(
        ConfigError, match=rf"{fit_configs[0].name}.*\n.*model.n_layerz: unknown key"
    ):
        validate_fit_config(data, source=str(fit_configs[0]))
