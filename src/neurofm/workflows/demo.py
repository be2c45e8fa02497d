"""The demo: the main job of neurofm on the real EEG sample shipped with the repository.

``neurofm demo`` (what ``make demo`` runs) chains every layer on real data:

1. prepares the shipped PhysioNet EEG sample (5 runs of subject S001, 64 channels, 160 Hz):
   notch + band-pass, recording-wise split (train R03, R04, R07 / val R08 / test R12) and a
   robust scaler fitted on train only;
2. fits a mu-law tokenizer on the train split and trains a small GPT2MEG-family model
   (``gpt2meg_trf``) on the codes with the generic training engine;
3. evaluates it on every window of the held-out run against the baselines fitted on train (last
   value, linear AR and ridge VAR sized on the val run, bigram, unigram, uniform) and the
   controls (mismatched and truncated context), in bits per channel-sample with block-bootstrap
   intervals, with the realism suite;
4. generates 10 s of signal after a held-out prompt and writes it as ``.npy`` and ``.fif``;
5. prints a summary table and where the report is.

``neurofm demo --inputs FILE [FILE ...]`` runs the same pipeline on the user's recordings instead
(checked and prepared by :mod:`neurofm.workflows.inputs`: data channels, 0.5 Hz high-pass, a split
in time for one or two recordings, by recording for more), with the model sized from the data
(:func:`sized_config`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neurofm.logging import get_logger

log = get_logger("demo")

RECIPE = "eegbci_sample"

WINDOW_S = 0.8
"""Training window (s) on the user's recordings: the shipped sample's 128 samples at 160 Hz."""


def demo_config(output: Path, *, max_steps: int, seed: int) -> dict[str, Any]:
    """The fit config of the demo (also written, resolved, into the run folder)."""
    return {
        "data": {
            "store": str(output / "data"),
            "window_length": 128,
            "stride": 64,
            "normalize": True,
            "batch_size": 4,
        },
        "tokenizer": {"name": "mulaw", "n_levels": 256},
        "model": {
            "name": "gpt2meg_trf",
            "preset": "tiny",
            "vocab_size": 256,
            "n_chans": 64,
            "d_model": 64,
            "n_layers": 2,
            "n_heads": 4,
            "max_seq_len": 128,
            # codes read as ordered amplitudes: in the embedding and in a Gaussian output term
            "value_embedding": True,
            "ordinal_head": True,
            # the Gaussian over the mu-law amplitudes, its mean a VAR over every channel's last
            # 16 values and its width falling with the recent squared changes (volatility),
            # both fitted on train before the first step and kept fixed; the transformer learns
            # the rest. Chosen on the validation run R08 (all 156 windows, bits per
            # channel-sample): a channel-wise AR(8) head 5.37; this head at initialisation 4.477
            # without volatility, 4.458 with it; 60 steps with the VAR trained 4.476, with it
            # fixed 4.447 (Adam's steps make a closed-form optimum random-walk)
            "amplitude": "mulaw",
            "var_order": 16,
            "linear_init": "train_ridge",
            "linear_trainable": False,
            "volatility": True,
        },
        "objective": {"name": "next_token"},
        "optim": {"lr": 3.0e-3, "warmup_steps": 20},
        "trainer": {
            "max_steps": max_steps,
            "val_check_interval": max(1, max_steps // 2),
            "limit_val_batches": 8,
            "log_every_n_steps": 10,
            "seed": seed,
        },
        "output": {
            "dir": str(output / "run"),
            "checkpoint_every_n_steps": max(1, max_steps // 3),
            "keep_checkpoints": 3,  # every point of the learning curve
        },
    }


def sized_config(config: dict[str, Any], *, n_chans: int, sfreq: float) -> dict[str, Any]:
    """``config`` (from :func:`demo_config`) with the data-dependent sizes set for recordings of
    ``n_chans`` channels at ``sfreq`` Hz: the model's ``n_chans``, and windows of
    :data:`WINDOW_S` capped to the model's ``max_seq_len`` (stride: half a window). Every other
    setting stays the demo's."""
    window = min(max(2, round(WINDOW_S * sfreq)), int(config["model"]["max_seq_len"]))
    return {
        **config,
        "data": {**config["data"], "window_length": window, "stride": max(1, window // 2)},
        "model": {**config["model"], "n_chans": n_chans},
    }


GENERATE_TOP_P = 0.9
"""Nucleus sampling mass of the demo's generated signal (see :func:`run_demo`)."""


def run_demo(
    output: str | Path = "demo_out",
    *,
    inputs: Sequence[str | Path] | None = None,
    max_steps: int = 150,
    generate_seconds: float = 10.0,
    generate_top_p: float | None = GENERATE_TOP_P,
    generate_copula: bool = True,
    evaluation_preset: str = "tiny",
    seed: int = 0,
) -> dict[str, Any]:
    """Run the whole demo and return its summary (also written to ``<output>/summary.json``).

    Parameters
    ----------
    output : path
        Folder for the prepared data, the run, the report and the generated signal. The prepared
        data is reused when up to date; an earlier run in ``<output>/run`` is replaced.
    inputs : sequence of paths, optional
        The user's recordings (any format :func:`~neurofm.io.read_recording` reads) instead of
        the shipped sample; see :mod:`neurofm.workflows.inputs` for the checks and the split.
    max_steps : int
        Optimizer steps of the training run.
    generate_seconds : float
        Seconds of signal generated after a held-out prompt.
    generate_top_p : float or None
        Nucleus sampling mass of the generation (None: the full distribution). The default 0.9
        cuts the tails of the model's predictive distributions, whose rare far codes otherwise
        make sampled continuations grow in amplitude (docs/evaluation.md, "Held-out
        comparison"); the evaluation's scores use the full distribution either way (its
        rollouts and realism suite sample as the generation does).
    generate_copula : bool
        Draw the channels of each generated time step jointly through a Gaussian copula fitted
        on the train windows (:class:`neurofm.generation.copula.ChannelCopula`). The model
        predicts each channel given the past alone; EEG innovations are correlated across
        channels, and independent draws inflate the generated amplitude (see docs/demo.md).
    evaluation_preset : str
        Preset of the evaluation (``tiny``, ``small``, ``base``).
    seed : int
        Seed of training, evaluation and sampling.
    """
    from neurofm.config import build_config
    from neurofm.data.prepare import prepare
    from neurofm.data.recipes import prepare_recipe
    from neurofm.evaluation.evaluate import EvaluateConfig, evaluate_run
    from neurofm.evaluation.learning_curve import learning_curve
    from neurofm.fileio import check_writable, write_json_atomic
    from neurofm.training.fit import fit
    from neurofm.workflows.generate import generate_run
    from neurofm.workflows.inputs import check_inputs

    output = Path(output)
    check_writable(output, what="output")
    output.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    config = demo_config(output, max_steps=max_steps, seed=seed)
    if inputs is None:
        log.info("1/4 preparing the shipped EEG sample into %s", output / "data")
        store = prepare_recipe(RECIPE, output / "data")
        data: dict[str, Any] = {"inputs": f"the shipped sample ({RECIPE})"}
    else:
        recordings = check_inputs(inputs)
        log.info("1/4 preparing %d recording(s) into %s", len(recordings.paths), output / "data")
        store = prepare(recordings.prepare_config(output / "data"))
        config = sized_config(config, n_chans=recordings.n_chans, sfreq=recordings.sfreq)
        data = {"inputs": recordings.paths}
    data.update(
        n_chans=int(config["model"]["n_chans"]),
        sfreq=float(store.recordings[0].sfreq),
        window_length=int(config["data"]["window_length"]),
        split=split_description(store.manifest),
    )
    timings["prepare_s"] = time.perf_counter() - start

    start = time.perf_counter()
    run_dir = output / "run"
    if run_dir.exists():
        log.info("replacing the earlier demo run in %s", run_dir)
        shutil.rmtree(run_dir)
    log.info("2/4 fitting a mu-law tokenizer and training gpt2meg_trf for %d steps", max_steps)
    fit(config, source="neurofm demo")
    timings["fit_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log.info("3/4 evaluating on the held-out test split against baselines and controls")
    # the realism suite and rollouts sample as the demo's generation does (the scores use none)
    sampling = {"top_p": generate_top_p, "channel_copula": generate_copula}
    eval_cfg = build_config(EvaluateConfig, {"preset": evaluation_preset, "seed": seed, **sampling})
    result = evaluate_run(run_dir, config=eval_cfg, out_dir=output / "report")
    timings["evaluate_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log.info("    learning curve: every checkpoint on the same held-out windows")
    curve = learning_curve(
        run_dir, config=eval_cfg, out_dir=output / "report", reference=result.report
    )
    timings["learning_curve_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log.info("4/4 generating %.1f s of signal after a held-out prompt", generate_seconds)
    paths = generate_run(
        run_dir,
        prompt="test:0",
        seconds=generate_seconds,
        seed=seed,
        top_p=generate_top_p,
        channel_copula=generate_copula,
        output=output / "generated",
    )
    timings["generate_s"] = time.perf_counter() - start

    summary = {
        "data": data,
        "scores": bits_table(result.report),
        "windows": result.report.get("windows"),
        "learning_curve": {
            "png": str(output / "report" / "learning_curve.png"),
            "best_linear": curve["best_linear"],
            "wins_from_step": curve["wins_from_step"],
            "points": [
                {k: p[k] for k in ("step", "bits", "minus_best_linear_interval")}
                for p in curve["points"]
            ],
        },
        "timings": timings,
        "report": str(output / "report" / "report.html"),
        "generated": {key: str(value) for key, value in paths.items()},
        "run": str(run_dir),
    }
    write_json_atomic(output / "summary.json", summary)
    print(format_summary(summary))
    return summary


def split_description(manifest: dict[str, Any]) -> dict[str, Any]:
    """How the prepared store was split, in words: ``{"by", "text"}``."""
    policy, splits = manifest["split_policy"], manifest["splits"]
    if policy["by"] == "time":
        sfreq = float(policy["sfreq"])
        parts = []
        for rec in manifest["recordings"]:
            spans = [
                f"{name} {seg['start'] / sfreq:.1f}-{seg['stop'] / sfreq:.1f} s"
                for name, segs in splits.items()
                for seg in segs
                if seg["recording"] == rec["id"]
            ]
            parts.append(f"{rec['id']}: " + ", ".join(spans))
        gaps = f"gaps of {policy['gap_s']:g} s"
        text = f"split in time within each recording ({gaps}): " + "; ".join(parts)
    else:
        groups = [
            f"{name} " + ", ".join(sorted({seg["recording"] for seg in segs}))
            for name, segs in splits.items()
        ]
        text = f"split by {policy['by']}: " + " / ".join(groups)
    return {"by": policy["by"], "text": text}


def bits_table(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Held-out bits per channel-sample of the model, its baselines and controls, each with its
    95% block-bootstrap interval and the model minus it (see
    :func:`~neurofm.evaluation.report.bits_summary`)."""
    from neurofm.evaluation.report import bits_summary

    return bits_summary(report)


def format_summary(summary: dict[str, Any]) -> str:
    """The final table the demo prints."""
    from neurofm.evaluation.report import bits_lines

    windows = summary.get("windows") or {}
    lines = [
        "",
        "neurofm demo: held-out test split, bits per channel-sample (lower is better), "
        f"{windows.get('scored', '?')} non-overlapping windows, 95% block-bootstrap intervals",
        f"split:     {summary['data']['split']['text']}",
        *bits_lines(summary["scores"]),
    ]
    curve = summary.get("learning_curve")
    if curve:
        steps = ", ".join(f"{p['step']}: {p['bits']:.3f}" for p in curve["points"])
        lines.append(f"learning curve (step: model bits): {steps}")
        lines.append(
            f"model better than {curve['best_linear']} (whole 95% interval below 0) from step: "
            f"{curve['wins_from_step']}  ({curve['png']})"
        )
    t = summary["timings"]
    lines.append(
        "time: prepare {prepare_s:.0f} s, fit {fit_s:.0f} s, evaluate {evaluate_s:.0f} s, "
        "learning curve {learning_curve_s:.0f} s, generate {generate_s:.0f} s".format(
            **{"learning_curve_s": 0.0, **t}
        )
    )
    lines.append(f"report:    {summary['report']}")
    lines.append(f"generated: {summary['generated'].get('fif', '')}")
    return "\n".join(lines)
