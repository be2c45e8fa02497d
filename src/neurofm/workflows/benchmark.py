"""The forecasting leaderboard: every registered forecasting family trained and scored alike.

``neurofm benchmark`` finds the forecasting families in the model registry by their spec (causal,
with ``logits`` over ``channel_codes`` or ``token_sequence``, or a ``prediction`` of the
``signal``; aliases are left out), so a new family joins by registering its spec. Each family
gets a fit config made of one shared base (data section, steps, optimizer, seed) and its own
sections derived from its spec and the data:

- data: the shipped sample is prepared as the demo's, with EEG positions of the standard 10-05
  montage (``set_montage``) so that the grid families (``wavenet3d``, ``ck3d``) join;
- model: the family's ``small`` or ``tiny`` preset with ``n_chans`` from the windows,
  ``n_subjects`` from the store, ``vocab_size`` from the tokenizer and ``max_seq_len`` from the window (channels x window for a
  flat token sequence), and a sensor grid (``grid_size``) that holds the channels;
- tokenizer: 256-level mu-law for ``channel_codes``; the ``flat`` layout of it (time-major) for
  ``token_sequence``; none for a signal;
- objective: ``next_token`` for logits; ``forecast`` for a prediction, with ``gaussian_nll`` when
  the spec has a variance (else ``mse``).

A family whose sequence exceeds its preset's ``max_seq_len`` is skipped (the budget); one that
fails to train or to evaluate gets a row saying why. Each run is evaluated by
:func:`~neurofm.evaluation.evaluate.evaluate_run`; the baselines (last value, linear AR, ridge
VAR, bigram, unigram, uniform) come from one run's report (the first model over codes scored)
and are shown once, as reference rows. The table is written as ``benchmark.md``,
``benchmark.json`` and ``benchmark.png``.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Literal

from neurofm.logging import get_logger
from neurofm.workflows.leaderboard import leaderboard, markdown_table

log = get_logger("benchmark")

FORECASTING = {
    ("channel_codes", "logits"),
    ("token_sequence", "logits"),
    ("signal", "prediction"),
}
"""The (inputs, outputs) of a spec that make a causal model a forecaster on the leaderboard."""

N_LEVELS = 256
"""Mu-law levels of every tokenizer (and of a continuous forecaster's code bins)."""
MONTAGE = {"name": "set_montage", "montage": "standard_1005"}
"""The preprocessing step giving the shipped sample's EEG channels their positions."""


class Skipped(Exception):
    """A family that does not fit the benchmark's budget (the message says why)."""


def base_config(
    store: str | Path, output: str | Path, *, max_steps: int, seed: int
) -> dict[str, Any]:
    """The sections every family shares: data, optimizer, trainer (steps and seed), output."""
    return {
        "data": {
            "store": str(store),
            "window_length": 128,
            "stride": 64,
            "normalize": True,
            "batch_size": 4,
        },
        "optim": {"lr": 1.0e-3, "warmup_steps": min(20, max_steps // 10)},
        "trainer": {
            "max_steps": max_steps,
            "val_check_interval": max(1, max_steps // 2),
            "limit_val_batches": 8,
            "log_every_n_steps": max(1, min(10, max_steps)),
            "enable_progress_bar": False,
            "seed": seed,
        },
        "output": {"dir": str(Path(output) / "runs"), "checkpoint_every_n_steps": max_steps},
    }


def forecasting_families() -> list[str]:
    """Registered models (not aliases) whose default spec is a causal forecaster."""
    from neurofm.registry import MODELS

    names = []
    for entry in MODELS.entries():
        spec = entry.spec_for(entry.config_cls() if entry.config_cls else None)
        if entry.alias_of is None and spec.causal and (spec.inputs, spec.outputs) in FORECASTING:
            names.append(entry.name)
    return names


def _tokenizer_section(inputs: str) -> dict[str, Any] | None:
    mulaw = {"name": "mulaw", "n_levels": N_LEVELS}
    if inputs == "channel_codes":
        return mulaw
    if inputs == "token_sequence":
        return {"name": "flat", "amplitude": mulaw, "order": "time"}
    return None


def family_config(
    name: str,
    base: dict[str, Any],
    *,
    sizes: dict[str, int],
    preset: str,
    model_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The fit config of family ``name``: ``base`` plus its model, tokenizer and objective.

    Parameters
    ----------
    name : str
        A registered model.
    base : dict
        The shared sections (:func:`base_config`); ``output.dir`` is the folder of all runs.
    sizes : dict
        ``n_chans`` (channels of the windows) and ``n_subjects`` (subjects of the store): the
        model fields of these names are set to them (:func:`data_sizes`).
    preset : str
        The model preset (``tiny`` or ``small``).
    model_overrides : dict, optional
        Values set on the model section last (``--model.<family>.<field>``).

    Raises
    ------
    Skipped
        The family's sequence is longer than its preset's ``max_seq_len``.
    """
    from neurofm.config import build_config
    from neurofm.registry import MODELS, TOKENIZERS, create

    entry = MODELS.get(name)
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    section: dict[str, Any] = {"name": name, "preset": preset, **(model_overrides or {})}
    preset_config = build_config(entry.config_cls, _config_values(entry, section))
    spec = entry.spec_for(preset_config)
    window, n_chans = int(base["data"]["window_length"]), sizes["n_chans"]
    length = window * n_chans if spec.inputs == "token_sequence" else window
    if spec.max_seq_len is not None and length > spec.max_seq_len:
        raise Skipped(
            f"a window is {length} tokens ({n_chans} channels x {window} samples) "
            f"> max_seq_len={spec.max_seq_len} of its {preset!r} preset"
            if spec.inputs == "token_sequence"
            else f"a window of {length} samples > max_seq_len={spec.max_seq_len}"
        )
    tokenizer = _tokenizer_section(spec.inputs)
    sized = {**sizes, "max_seq_len": length}
    if "grid_size" in fields:  # a sensor grid with a free cell per side beyond the channels
        sized["grid_size"] = max(preset_config.grid_size, math.isqrt(n_chans - 1) + 2)
    if tokenizer is not None:
        sized["vocab_size"] = create(TOKENIZERS, tokenizer, key="tokenizer").vocab_size
    section = {
        "name": name,
        "preset": preset,
        **{k: v for k, v in sized.items() if k in fields},
        **(model_overrides or {}),
    }
    spec = entry.spec_for(build_config(entry.config_cls, _config_values(entry, section)))
    if spec.outputs == "logits":
        objective: dict[str, Any] = {"name": "next_token"}
    else:
        objective = {"name": "forecast", "loss": "gaussian_nll" if spec.variance else "mse"}
    output = {**base["output"], "dir": str(Path(base["output"]["dir"]) / name)}
    config = {**base, "model": section, "objective": objective, "output": output}
    if tokenizer is not None:
        config["tokenizer"] = tokenizer
    return config


def _config_values(entry: Any, section: dict[str, Any]) -> dict[str, Any]:
    """A model section as its config class takes it: the alias defaults first, no ``name``."""
    return {**entry.defaults, **{k: v for k, v in section.items() if k != "name"}}


def data_sizes(data: dict[str, Any]) -> dict[str, int]:
    """``n_chans``: channels of the train windows the ``data`` section reads; ``n_subjects``:
    subjects of its store (the ids a subject table is indexed by)."""
    from neurofm.config import build_config
    from neurofm.data.store import PreparedStore
    from neurofm.data.windows import vocabularies
    from neurofm.training.config import DataConfig
    from neurofm.training.data import build_dataset

    cfg = build_config(DataConfig, data, prefix="data")
    store = PreparedStore.open(cfg.store)
    dataset = build_dataset(store, cfg, cfg.train_split)
    return {
        "n_chans": int(dataset[0]["x"].shape[0]),
        "n_subjects": len(vocabularies(store.manifest)["subject"]),
    }


def _why(err: BaseException) -> str:
    """One line saying why a family failed."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}"[:300]


def run_benchmark(
    output: str | Path = "benchmark_out",
    *,
    store: str | Path | None = None,
    max_steps: int = 200,
    preset: Literal["tiny", "small"] = "small",
    families: list[str] | None = None,
    evaluation: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Train and evaluate every forecasting family alike and write the leaderboard.

    Parameters
    ----------
    output : path
        Folder of the prepared sample (without ``store``), the runs (``runs/<family>``, replaced
        when there), the reports (``reports/<family>``) and ``benchmark.{md,json,png}``.
    store : path, optional
        A prepared store with train, val and test splits (default: the shipped EEG sample,
        prepared like the demo's).
    max_steps : int
        Optimizer steps of every run.
    preset : str
        Model preset of every family (``tiny`` or ``small``).
    families : list of str, optional
        A subset of the forecasting families (default: all of them).
    evaluation : dict, optional
        Evaluation settings (:class:`~neurofm.evaluation.common.EvaluateConfig`; default preset
        ``tiny``).
    overrides : dict, optional
        Dotted overrides of the shared base (``data.window_length``, ``optim.lr``,
        ``trainer.accelerator``) and of one family's model section
        (``model.<family>.<field>``).
    seed : int
        Seed of training and evaluation.

    Returns
    -------
    dict
        The leaderboard (also ``benchmark.json``): ``rows``, ``settings``, ``baselines_from``.
    """
    from neurofm.config import apply_overrides, build_config
    from neurofm.errors import ConfigError
    from neurofm.evaluation.common import EvaluateConfig
    from neurofm.evaluation.plots import plot_leaderboard
    from neurofm.fileio import check_writable, write_json_atomic
    from neurofm.registry import unknown_name_message

    output = Path(output)
    check_writable(output, what="output")
    output.mkdir(parents=True, exist_ok=True)
    if store is None:
        from neurofm.data.prepare import prepare, recipe_config
        from neurofm.workflows.demo import RECIPE

        store = output / "data"
        log.info("preparing the shipped EEG sample into %s", store)
        # sensor positions from the standard 10-05 montage: the grid families read them
        sample = recipe_config(RECIPE)
        sample["preprocessing"] = [MONTAGE, *sample["preprocessing"]]
        prepare({**sample, "output": str(store), "jobs": 1})
    overrides = dict(overrides or {})
    sections = ("data.", "optim.", "trainer.", "model.")
    unknown = [
        f"{key}: the benchmark overrides only {', '.join(s + '*' for s in sections)}"
        for key in overrides
        if not key.startswith(sections)
    ]
    if unknown:
        raise ConfigError(unknown)
    model_overrides = {k: overrides.pop(k) for k in list(overrides) if k.startswith("model.")}
    base = apply_overrides(base_config(store, output, max_steps=max_steps, seed=seed), overrides)
    models = apply_overrides({}, model_overrides).get("model", {})
    eval_cfg = build_config(
        EvaluateConfig, {"preset": "tiny", "seed": seed, **(evaluation or {})}, prefix="evaluation"
    )

    known = forecasting_families()
    chosen = list(families) if families else known
    problems = [
        unknown_name_message("forecasting family", name, known, key="families")
        for name in [*chosen, *models]
        if name not in known
    ]
    if problems:
        raise ConfigError(problems)
    sizes = data_sizes(base["data"])
    rows = [
        _run_family(
            name,
            base,
            sizes=sizes,
            preset=preset,
            model_overrides=models.get(name),
            evaluation=eval_cfg,
            reports=output / "reports",
        )
        for name in chosen
    ]
    board = leaderboard(rows)
    board["settings"] = {
        "store": str(store),
        "preset": preset,
        "max_steps": max_steps,
        **sizes,
        "data": base["data"],
        "optim": base["optim"],
        "seed": seed,
        "evaluation": dataclasses.asdict(eval_cfg),
    }
    write_json_atomic(output / "benchmark.json", board)
    (output / "benchmark.md").write_text(markdown_table(board))
    plot_leaderboard(board["rows"], output / "benchmark.png")
    print(markdown_table(board))
    return board


def _run_family(
    name: str,
    base: dict[str, Any],
    *,
    sizes: dict[str, int],
    preset: str,
    model_overrides: dict[str, Any] | None,
    evaluation: Any,
    reports: Path,
) -> dict[str, Any]:
    """Train and evaluate one family; its row, with ``status`` and ``reason`` when it did not."""
    from neurofm.evaluation.evaluate import evaluate_run
    from neurofm.training.fit import fit
    from neurofm.training.pretrained import from_pretrained
    from neurofm.training.run_folder import MODEL_DIR

    row: dict[str, Any] = {"name": name, "kind": "model", "status": "ok"}
    try:
        config = family_config(
            name, base, sizes=sizes, preset=preset, model_overrides=model_overrides
        )
    except Skipped as err:
        log.info("benchmark: %s skipped: %s", name, err)
        return {**row, "status": "skipped", "reason": str(err)}
    except Exception as err:
        return {**row, "status": "failed", "reason": f"config: {_why(err)}"}
    row["config"] = {k: config[k] for k in ("model", "tokenizer", "objective") if k in config}
    run_dir = Path(config["output"]["dir"])
    if run_dir.exists():
        shutil.rmtree(run_dir)
    stage = "fit"
    try:
        log.info("benchmark: training %s for %d steps", name, config["trainer"]["max_steps"])
        start = time.perf_counter()
        fit(config, source=f"neurofm benchmark ({name})")
        row["train_s"] = time.perf_counter() - start
        model = from_pretrained(run_dir / MODEL_DIR)
        row["parameters"] = sum(p.numel() for p in model.parameters())
        stage = "evaluate"
        result = evaluate_run(run_dir, config=evaluation, out_dir=reports / name)
    except Exception as err:
        log.warning("benchmark: %s failed to %s\n%s", name, stage, traceback.format_exc())
        return {**row, "status": "failed", "reason": f"{stage}: {_why(err)}"}
    row["report"] = result.report
    return row
