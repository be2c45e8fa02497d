"""``neurofm generate``: continue a held-out window of a run and write .npy, .fif and a plot."""

from __future__ import annotations

from typing import Optional


def generate(
    run: str,
    prompt: str = "test:0",
    seconds: float = 2.0,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    top_p: Optional[float] = None,
    precision: str = "32",
    channel_copula: bool = False,
    output: Optional[str] = None,
    checkpoint: Optional[str] = None,
    channel: int = 0,
    unconditional: bool = False,
    input: Optional[str] = None,
    events: Optional[str] = None,
    sfreq: Optional[float] = None,
    max_new_tokens: int = 32,
    num_beams: int = 1,
) -> None:
    """Generate signal after a prompt taken from the run's data, in physical units.

    Writes ``generated.npy`` (channels x times, float32, prompt included) with ``generated.json``
    (channel names, types, units, sfreq, settings), ``generated_raw.fif`` (MNE raw, with the
    training data's channel names, types and sampling frequency) and ``generated.png``.

    Args:
        run: the run folder written by ``neurofm fit``.
        prompt: ``split:index`` (a whole window, e.g. ``test:3``) or seconds (e.g. ``1.5``: the
            first 1.5 s of window 0 of the test split).
        seconds: length of the generated continuation in seconds.
        seed: random seed of the sampler.
        temperature: softmax temperature (0: greedy).
        top_k: sample among the ``top_k`` most likely codes only.
        top_p: nucleus sampling probability mass.
        precision: ``32``, or ``bf16`` to run the model's matrix products under bfloat16
            autocast (faster on CPUs and GPUs with bf16 units; sampling stays float32).
        channel_copula: draw the channels of each time step jointly through a Gaussian copula
            fitted on the run's train windows (innovations correlated as in the data; use with
            ``top_p``).
        output: output folder (default ``<run>/generated``).
        checkpoint: ``best``, ``last`` or ``step-<N>`` instead of the final model.
        channel: next-band models: the channel plotted and scored in ``rollout_metrics.json``.
        unconditional: next-band models: generate every band from zeros instead of from the
            window's lowest band.
        input: MEG-to-text runs: the recording to decode (.fif, .npy with --sfreq, BIDS, ...).
        events: MEG-to-text runs: word onsets (.tsv/.csv with an ``onset`` column).
        sfreq: MEG-to-text runs: the sampling rate of an array input (Hz).
        max_new_tokens: MEG-to-text runs: most text tokens per segment.
        num_beams: MEG-to-text runs: 1 for greedy decoding, more for beam search.

    A next-band model (sampling ``next_band``) writes instead ``rollout.npy`` (num_stages, C, T),
    ``rollout.json``, ``rollout.png`` and ``rollout_metrics.json`` (per-stage MSE, SNR,
    cumulative MSE) for window ``prompt`` (``split:index``).

    A MEG-to-text run (``meg_text``) decodes the recording ``input`` segment by segment (at word
    onsets when known, else consecutive windows) and writes ``results.json``: the text of each
    segment with its onset and duration (see :mod:`neurofm.workflows.text_generate`).
    """
    if input is not None:
        from neurofm.workflows.text_generate import generate_text_run

        path = generate_text_run(
            run,
            input_path=input,
            events=events,
            sfreq=sfreq,
            output=output,
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
        )
        print(f"results: {path}")
        return
    from neurofm.workflows.generate import generate_run

    paths = generate_run(
        run,
        prompt=prompt,
        seconds=seconds,
        seed=seed,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        precision=precision,
        channel_copula=channel_copula,
        output=output,
        checkpoint=checkpoint,
        channel=channel,
        unconditional=unconditional,
    )
    for kind, path in paths.items():
        print(f"{kind}: {path}")
