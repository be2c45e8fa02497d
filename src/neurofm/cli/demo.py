"""``neurofm demo``: the main job on the real EEG sample shipped with the repository."""

from __future__ import annotations

from typing import Literal


def demo(
    output: str = "demo_out",
    max_steps: int = 400,
    seconds: float = 10.0,
    evaluation: Literal["tiny", "small", "base"] = "tiny",
    seed: int = 0,
) -> None:
    """Prepare the shipped EEG sample, train a GPT2MEG-family model, evaluate it against
    baselines and controls on a held-out run, generate signal, and print a summary.

    Args:
        output: folder for the prepared data, the run, the report and the generated signal.
        max_steps: optimizer steps of the training run.
        seconds: seconds of signal generated after a held-out prompt.
        evaluation: size of the evaluation (number of windows, permutations).
        seed: seed of training, evaluation and sampling.
    """
    from neurofm.workflows.demo import run_demo

    run_demo(
        output,
        max_steps=max_steps,
        generate_seconds=seconds,
        evaluation_preset=evaluation,
        seed=seed,
    )
