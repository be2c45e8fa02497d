"""``neurofm fit``: train a model from a YAML config (thin layer over neurofm.training.fit)."""

from __future__ import annotations

from typing import Optional


def fit(
    data: Optional[dict] = None,
    tokenizer: Optional[dict] = None,
    model: Optional[dict] = None,
    objective: Optional[dict] = None,
    optim: Optional[dict] = None,
    trainer: Optional[dict] = None,
    output: Optional[dict] = None,
    resume: bool = False,
) -> None:
    """Train a model on a prepared store and write a run folder (config, model, checkpoints, metrics).

    Use ``--config configs/fit/<family>/<name>.yaml`` (e.g. ``configs/fit/gpt2meg/gpt2meg.yaml``)
    and dotted overrides such as ``--model.n_layers 4``.

    Args:
        data: prepared store, splits, window length/stride, batch size, workers, labels.
        tokenizer: a tokenizer to fit on the train split ({name: ..., ...}) or {dir: saved one}.
        model: registered model: {name: ..., preset: ..., <fields>}.
        objective: registered objective: {name: ..., <fields>}.
        optim: AdamW and warm-up/cosine schedule (lr, weight_decay, warmup_steps, ...).
        trainer: max_steps/max_epochs, precision, accelerator, devices, strategy, accumulation,
            clipping, early stopping, validation interval, logging interval, seed.
        output: run folder (dir), checkpoint interval, checkpoints kept, TensorBoard.
        resume: continue the run in output.dir exactly from its newest complete checkpoint.
    """
    from neurofm.cli._context import take_overrides
    from neurofm.config import apply_overrides
    from neurofm.training.fit import fit as run_fit

    sections = {
        "data": data,
        "tokenizer": tokenizer,
        "model": model,
        "objective": objective,
        "optim": optim,
        "trainer": trainer,
        "output": output,
    }
    config = apply_overrides({k: v for k, v in sections.items() if v is not None}, take_overrides())
    run_dir = run_fit(config, resume=resume)
    print(f"run folder: {run_dir}")
