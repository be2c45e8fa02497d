"""``neurofm demo``: the main job on the real EEG sample shipped with the repository, or on the
user's recordings (``--inputs FILE [FILE ...]``)."""

from __future__ import annotations

from typing import Literal


def demo(
    output: str = "demo_out",
    inputs: list[str] | None = None,
    max_steps: int = 150,
    seconds: float = 10.0,
    top_p: float | None = 0.9,
    copula: bool = True,
    evaluation: Literal["smoke", "tiny", "small", "base"] = "tiny",
    seed: int = 0,
) -> None:
    """Prepare the shipped EEG sample (or your recordings), train a GPT2MEG-family model,
    evaluate it against baselines and controls on held-out data, generate signal, and print a
    summary.

    Args:
        output: folder for the prepared data, the run, the report and the generated signal.
        inputs: your recordings (any format `neurofm inspect` reads), e.g. `--inputs a.edf b.edf`;
            one or two are split in time (train, val, test), three or more by recording. The
            model is sized from their data channels and sampling rate. Default: the shipped
            sample.
        max_steps: optimizer steps of the training run.
        seconds: seconds of signal generated after a held-out prompt.
        top_p: nucleus sampling mass of the generated signal (null: the full distribution,
            whose rare far codes make the continuation grow in amplitude).
        copula: draw the channels of each generated time step jointly, correlated as in the
            training data (false: independently, which inflates the generated amplitude).
        evaluation: size of the evaluation (number of windows, permutations); smoke is for quick checks only.
        seed: seed of training, evaluation and sampling.
    """
    from neurofm.workflows.demo import run_demo

    run_demo(
        output,
        inputs=inputs,
        max_steps=max_steps,
        generate_seconds=seconds,
        generate_top_p=top_p,
        generate_copula=copula,
        evaluation_preset=evaluation,
        seed=seed,
    )
