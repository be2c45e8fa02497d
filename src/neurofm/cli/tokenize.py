"""``neurofm tokenize``: fit a tokenizer on the train split, encode the dataset, write a report."""

from __future__ import annotations

from typing import Optional


def tokenize(
    data: Optional[dict] = None,
    tokenizer: Optional[dict] = None,
    report: Optional[dict] = None,
    output: str = "tokenize_out",
) -> None:
    """Fit a tokenizer on the train split of a prepared store, encode it, and report on held-out data.

    Writes ``<output>/config.yaml`` (resolved), ``tokenizer/`` (config JSON + safetensors),
    ``codes/<recording>.npy`` with ``codes/manifest.json``, and ``report/report.json`` with PNG
    plots (code histogram, PSD overlay, example trace). Example:
    ``neurofm tokenize --config configs/tokenize/mulaw.yaml``.

    Args:
        data: ``{path: <prepared store>, split: train, eval_split: val}``.
        tokenizer: ``{name: mulaw, n_levels: 256, ...}`` (see ``neurofm list tokenizers``).
        report: ``{max_eval_seconds: null, example_channel: 0, example_seconds: 4}``.
        output: output folder.
    """
    from neurofm.cli._context import take_overrides
    from neurofm.config import apply_overrides
    from neurofm.evaluation.tokenizer_report import run_tokenize

    config = apply_overrides(
        {"data": data or {}, "tokenizer": tokenizer or {}, "report": report or {}}, take_overrides()
    )
    result = run_tokenize(config, output)
    codes = result["codes"] or {}
    print(
        f"tokenizer {result['tokenizer']} fitted on {result['fitted_on']}; report on "
        f"{result['split']}: RMSE/std {result['time']['rmse_over_std']:.4f}, "
        f"R² {result['time']['r2_mean']:.4f}, perplexity {codes.get('perplexity', float('nan')):.1f}, "
        f"clipped {result['n_clipped']}; written to {output}"
    )
