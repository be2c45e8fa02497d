"""``neurofm evaluate``: score a run on held-out data next to its baselines and controls."""

from __future__ import annotations

from typing import Optional


def evaluate(
    run: str,
    split: Optional[str] = None,
    evaluation: Optional[dict] = None,
    output: Optional[str] = None,
    checkpoint: Optional[str] = None,
) -> None:
    """Evaluate a training run on its held-out split and write a JSON + HTML report with plots.

    Scores the model (bits per channel-sample, next-step accuracy, forecast MSE / R² after
    decoding, rollout error against horizon), the baselines fitted on train (last value, linear
    AR and ridge VAR sized on the validation split, bigram, unigram, uniform) and the controls
    (the model reading another window's real input, and only the last k codes) on every
    non-overlapping held-out window with 95% block-bootstrap intervals, and compares continuations of held-out prompts with real signal (PSD, band power,
    channel correlations, amplitudes, MMD two-sample test, drift). A window classifier is
    scored by accuracy, balanced accuracy (with a label-permutation
    p-value), cross-entropy and confusion matrix, next to chance, band-power LDA and the model fed
    time-shuffled and noise windows. A continuous forecaster is scored by one-step MSE / R² and,
    when it predicts a variance, bits per channel-sample on the code bins of a 256-level mu-law
    tokenizer fitted on train, next to last value, linear AR, unigram and uniform, with mean
    rollouts fed back. The model's spec picks the evaluation. Writes ``report.json``, ``report.html``, PNG plots and the
    resolved ``evaluate.yaml``. Settings come from ``--config configs/evaluate/quick.yaml`` (or
    ``full.yaml``) and dotted overrides such as ``--evaluation.forecast_windows 64``.

    Args:
        run: the run folder written by ``neurofm fit``.
        split: held-out split to score (default ``evaluation.split``, i.e. ``test``).
        evaluation: settings ``{preset: tiny|small|base, forecast_windows: null, ar_orders: [8, 16], ...}``.
        output: report folder (default ``<run>/eval-<split>``).
        checkpoint: ``last`` or ``step-<N>`` to score a checkpoint instead of the final model.
    """
    from neurofm.cli._context import take_overrides
    from neurofm.config import apply_overrides, build_config
    from neurofm.evaluation.evaluate import EvaluateConfig, evaluate_run

    section = apply_overrides({"evaluation": evaluation or {}}, take_overrides())["evaluation"]
    if split is not None:
        section["split"] = split
    config = build_config(EvaluateConfig, section, prefix="evaluation")
    result = evaluate_run(run, config=config, out_dir=output, checkpoint=checkpoint)
    if result.report["task"] == "decoding":
        dec = result.report["decoding"]
        print(
            f"{config.split}: balanced accuracy model {dec['model']['balanced_accuracy']:.3f}"
            f" (permutation p {dec['model']['p_value']:.3g})"
            f" | chance {dec['chance']['balanced_accuracy']:.3f}"
            f" | band-power LDA {dec['band_power_lda']['balanced_accuracy']:.3f}"
            f" | shuffled input {dec['control_shuffled_input']['balanced_accuracy']:.3f}"
            f" | noise input {dec['control_noise_input']['balanced_accuracy']:.3f}"
        )
        print(f"report: {result.report['out_dir']}/report.html")
        return
    if result.report["task"] == "band_tokens":
        report = result.report
        print(f"{config.split}: cross-entropy per stage, nats/token (model | unigram)")
        for stage, entry in report["one_step_ce"].items():
            sc = entry["scores"]
            print(f"  {stage}: {sc['model']['mean']:.4g} | {sc['unigram']['mean']:.4g}")
        print(f"{config.split}: rollout MSE per stage (rollout | tokenizer floor | no new band)")
        for stage, entry in report["rollout_mse"].items():
            sc = entry["scores"]
            print(
                f"  {stage}: {sc['rollout']['mean']:.4g} | {sc['reconstruction']['mean']:.4g}"
                f" | {sc['no_new_band']['mean']:.4g}"
            )
        print(f"plot: {report['plot']}")
        print(f"report: {report['out_dir']}/report.html")
        return
    if result.report["task"] == "next_band":
        print(f"{config.split}: one-step MSE per stage (model | no new band | ridge)")
        for stage, scores in result.report["one_step"].items():
            mse = scores["mse"]
            print(
                f"  {stage}: {mse['model']['mean']:.4g} | {mse['no_new_band']['mean']:.4g}"
                f" | {mse['ridge']['mean']:.4g}"
            )
        print(f"rollout: {result.report['rollout']}")
        print(f"plot: {result.report['plot']}")
        print(f"report: {result.report['out_dir']}/report.md")
        return
    if result.report["task"] == "text":
        print(result.report["markdown"])
        print(f"report: {result.report['out_dir']}/report.md")
        return
    if result.report["task"] == "generative":
        report = result.report
        mse = ", ".join(f"{k} {v:.4g}" for k, v in report["forecast_by_imputation_mse"].items())
        print(f"{config.split}: forecast MSE by imputation: {mse}")
        steps = ", ".join(f"{k}: {v:.4g}" for k, v in report["mse_against_steps"].items())
        print(f"model MSE against sampling steps: {steps}")
        scores = report["bits"]["scores"]
        table = ", ".join(f"{k} {v['mean']:.3f}" for k, v in scores.items())
        print(f"bits per channel-sample of the second half (model: variational bound): {table}")
        if report.get("bits_unavailable"):
            print(f"model bits not available: {report['bits_unavailable']}")
        print(f"report: {report['out_dir']}/report.html")
        return
    if result.report["task"] == "cosmoothing":
        report = result.report
        bps = ", ".join(f"{k} {v:.4g}" for k, v in report["bits_per_spike"].items())
        print(f"{config.split}: co-smoothing bits per spike (higher is better): {bps}")
        for name, row in report.get("behaviour_r2", {}).items():
            low, high = row["r2_ci95"]
            print(f"behaviour R² {name}: {row['r2']:.3f} [{low:.3f}, {high:.3f}]")
        print(f"report: {report['out_dir']}/report.html")
        return
    if result.report["task"] in ("spike_events", "band_power"):
        from neurofm.evaluation.neural_x import summary_lines

        print("\n".join(summary_lines(result.report, config.split)))
        return
    from neurofm.evaluation.report import bits_lines, bits_summary

    one = result.report["one_step"]
    if result.report["task"] == "continuous_forecasting":
        r2 = {n: _fmt(s["r2"]) for n, s in one.items()}
        print(
            f"{config.split}: one-step R² model {r2['model']} | last value {r2['last_value']}"
            f" | linear AR {r2['linear_ar']} | ridge VAR {r2['ridge_var']}"
            f" | mismatched context {r2.get('control_mismatched_context', 'n/a')}"
        )
        if result.report["bits_unavailable"]:
            print(f"model bits not available: {result.report['bits_unavailable']}")

    windows = result.report.get("windows", {})
    print(
        f"{config.split}: bits per channel-sample on {windows.get('scored')} of "
        f"{windows.get('test_available')} non-overlapping windows (lower is better)"
    )
    print("\n".join(bits_lines(bits_summary(result.report))))
    print(f"report: {result.report['out_dir']}/report.html")


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"
