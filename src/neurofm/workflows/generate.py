"""Generation from a trained run folder: continue a held-out window and write the result.

``generate_run`` is what ``neurofm generate`` runs: it loads the run, takes a prompt window from
one of its splits, continues it with :func:`neurofm.generation.generate` and writes the signal
(``.npy`` + ``.json``, ``.fif``) and a plot with :mod:`neurofm.generation.export`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurofm.errors import ConfigError
from neurofm.generation.export import plot_generated, to_physical, write_fif, write_npy


def parse_prompt(prompt: str) -> tuple[str, int, float | None]:
    """``"split:index"`` -> (split, index, None); ``"S"`` (seconds) -> ("test", 0, S)."""
    text = str(prompt).strip()
    if ":" in text:
        split, _, index = text.partition(":")
        if not split or not index.lstrip("-").isdigit() or int(index) < 0:
            raise ConfigError(f"prompt: {prompt!r} is not 'split:index' (e.g. 'test:3') or seconds")
        return split, int(index), None
    try:
        seconds = float(text)
    except ValueError:
        raise ConfigError(
            f"prompt: {prompt!r} is not 'split:index' (e.g. 'test:3') or seconds (e.g. '1.5')"
        ) from None
    if not seconds > 0:
        raise ConfigError(f"prompt: seconds must be > 0, got {seconds}")
    return "test", 0, seconds


def generate_run(
    run_dir: str | Path,
    *,
    prompt: str = "test:0",
    seconds: float = 2.0,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    precision: str = "32",
    channel_copula: bool = False,
    output: str | Path | None = None,
    checkpoint: str | None = None,
    channel: int = 0,
    unconditional: bool = False,
) -> dict[str, Path]:
    """Continue a held-out window of a run by ``seconds`` and write ``.npy``, ``.fif`` and PNG.

    Parameters
    ----------
    run_dir : path
        A run folder of ``neurofm fit`` (model over codes + tokenizer).
    prompt : str
        ``"split:index"``: the whole window ``index`` of that split; or a number of seconds: the
        first seconds of window 0 of the test split.
    seconds : float
        Length of the generated continuation (s), of any length: past the model's
        ``max_seq_len`` the context slides (see :mod:`neurofm.generation.autoregressive`).
    seed, temperature, top_k, top_p, precision
        Sampling settings (see :class:`neurofm.generation.sampling.SamplingConfig`).
    channel_copula : bool
        Draw the channels of each time step jointly through a Gaussian copula fitted on the
        run's train windows (:class:`neurofm.generation.copula.ChannelCopula`): each channel's
        distribution stays the model's, the channels' innovations correlate as in the data.
        Use it with ``top_p``: with the full distributions the channels also reach their rare
        far codes together.
    output : path, optional
        Output folder (default ``<run_dir>/generated``).
    checkpoint : str, optional
        As in :func:`neurofm.training.run.load_run` (default: the final model).
    channel, unconditional
        Next-band models only (:mod:`neurofm.workflows.generate_bands`): the channel plotted and
        scored, and whether to start from zeros instead of the window's lowest band.

    Returns
    -------
    dict
        Paths of ``npy``, ``json``, ``fif`` and ``png``.
    """
    import torch

    from neurofm.data.collate import collate
    from neurofm.fileio import check_writable
    from neurofm.generation import SamplingConfig, generate
    from neurofm.registry import model_spec
    from neurofm.training.run import load_run

    check_writable(
        Path(output) if output is not None else Path(run_dir) / "generated", what="output"
    )
    run = load_run(run_dir, checkpoint=checkpoint)
    if model_spec(run.model).inputs == "signal_text":
        raise ConfigError(
            f"{run_dir}: a MEG-to-text run decodes a recording: give --input FILE (and --events)"
        )
    folder = Path(output) if output is not None else Path(run_dir) / "generated"
    if model_spec(run.model).sampling in ("next_band", "band_tokens"):
        from neurofm.workflows.generate_bands import generate_bands_run

        split, index, _ = parse_prompt(prompt if ":" in str(prompt) else "test:0")
        return generate_bands_run(
            run,
            split=split,
            index=index,
            channel=channel,
            unconditional=unconditional,
            output=folder,
            seed=seed,
            temperature=temperature,
            top_k=top_k,
        )
    if run.tokenizer is None:
        raise ConfigError(f"{run_dir}: the run has no tokenizer; generation continues codes")
    split, index, prompt_seconds = parse_prompt(prompt)
    dataset = run.dataset(split)
    if index >= len(dataset):
        raise ConfigError(f"prompt: split {split!r} has {len(dataset)} windows, no window {index}")
    item = dataset[index]
    rec = run.store.recordings[int(item["recording"])]
    sfreq = float(rec.sfreq)
    n_prompt = item["x"].shape[-1]
    if prompt_seconds is not None:
        n_prompt = round(prompt_seconds * sfreq)
        if not 1 <= n_prompt <= item["x"].shape[-1]:
            raise ConfigError(
                f"prompt: {prompt_seconds} s is {n_prompt} samples; a window holds "
                f"1..{item['x'].shape[-1]}"
            )
    n_new = round(seconds * sfreq)
    if n_new < 1:
        raise ConfigError(f"seconds: {seconds} s is {n_new} samples; at least 1 is needed")
    spec = model_spec(run.model)
    max_len = spec.max_seq_len
    if max_len is not None and n_prompt > max_len:
        raise ConfigError(
            f"prompt: {n_prompt} samples exceed the model's max_seq_len={max_len}; "
            f"give a prompt in seconds of at most {max_len / sfreq:.3f} s"
        )
    batch = collate([item])
    x = batch.x[..., :n_prompt]
    codes = torch.as_tensor(run.tokenizer.encode(x).codes).long()
    context = spec.context_of(batch.context)
    context.pop("condition", None)  # no condition is known beyond the prompt
    sampling = SamplingConfig(
        temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, precision=precision
    )
    copula = None
    if channel_copula:
        from neurofm.generation.copula import ChannelCopula

        train = run.dataset("train")
        copula = ChannelCopula.fit([np.asarray(train[i]["x"]) for i in range(len(train))])
    out = generate(run.model, codes, n_new, sampling, context=context, spec=spec, copula=copula)
    signal = np.asarray(run.tokenizer.decode(out), dtype=np.float64)[0]  # (C, T0 + N)
    channels = run.config["data"].get("channels") or rec.sensors.names
    sensors = rec.sensors.pick([rec.sensors.names.index(n) for n in channels])
    scaler = run.store.manifest.get("scaler") if run.config["data"].get("normalize") else None
    physical = to_physical(signal, sensors.names, scaler)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "run": str(run_dir),
        "prompt": prompt,
        "prompt_window": {
            "split": split,
            "index": index,
            "recording": rec.id,
            "start_sample": int(item["start"]),
        },
        "n_prompt": int(n_prompt),
        "n_generated": int(n_new),
        "seed": seed,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "precision": precision,
        "channel_copula": None
        if copula is None
        else {
            "fitted_on": "train windows: correlation of the one-step residuals of a ridge VAR",
            "mean_abs_correlation": _mean_abs_off_diagonal(copula.correlation.numpy()),
        },
        "first_sample_generated": int(n_prompt),
    }
    paths = {
        "npy": write_npy(
            folder / "generated.npy", physical, sfreq=sfreq, sensors=sensors, meta=meta
        ),
        "fif": write_fif(folder / "generated_raw.fif", physical, sfreq=sfreq, sensors=sensors),
        "png": plot_generated(
            folder / "generated.png", physical, sfreq=sfreq, n_prompt=n_prompt, names=sensors.names
        ),
    }
    paths["json"] = paths["npy"].with_suffix(".json")
    return paths


def _mean_abs_off_diagonal(r: np.ndarray) -> float:
    """Mean absolute off-diagonal entry of a square matrix (0 for one channel)."""
    off = ~np.eye(len(r), dtype=bool)
    return float(np.abs(r[off]).mean()) if off.any() else 0.0
