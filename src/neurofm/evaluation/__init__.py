"""Evaluation: metrics, baselines, realism suite, rollouts and the JSON + PNG + HTML report.

- :mod:`~neurofm.evaluation.metrics`: bits per channel-sample, next-step accuracy, MSE / R²,
  rollout error against horizon.
- :mod:`~neurofm.evaluation.baselines`: last value, linear AR, unigram (forecasting); majority
  class and band-power LDA (decoding); all fitted on train only.
- :mod:`~neurofm.evaluation.realism`: PSD / band power, channel correlations, amplitudes, MMD
  two-sample test and drift, on any two sets of windows.
- :mod:`~neurofm.evaluation.evaluate`: ``evaluate_forecasting`` (models over codes, arrays) and
  ``evaluate_run`` (a run folder; ``neurofm evaluate``), which picks the evaluation by the model's
  spec: codes forecasting, :mod:`~neurofm.evaluation.continuous` (continuous forecasters: MSE /
  R² and bits on mu-law code bins) or :mod:`~neurofm.evaluation.decoding` (classifiers).
- :mod:`~neurofm.evaluation.common`: the settings (``EvaluateConfig``) and the run-report folder
  they share; :mod:`~neurofm.evaluation.report` writes the report.

Submodules import numpy, scipy, torch or matplotlib; import them directly.
"""
