"""The code-forecasting baselines of ``neurofm evaluate``, fitted on train windows.

Shared by the evaluation of token models (:mod:`~neurofm.evaluation.evaluate`) and of denoisers
(:mod:`~neurofm.evaluation.generative`), so that both score their baselines alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurofm.evaluation import baselines as bl
from neurofm.evaluation.common import EvaluateConfig, split_validation
from neurofm.evaluation.linear import RidgeVAR, fit_linear_baselines


def code_baselines(
    bins: bl.CodeBins,
    train_codes: np.ndarray,
    val_codes: np.ndarray | None,
    start: int,
    cfg: EvaluateConfig,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every code-forecasting baseline fitted on train (sizes chosen on validation) and the
    selection report."""
    fit_codes, (val,), source = split_validation(
        [train_codes], None if val_codes is None else [val_codes], cfg.val_windows
    )
    linear, selection = fit_linear_baselines(
        bins,
        train_values=bins.decode(fit_codes[0]),
        val_values=bins.decode(val),
        val_codes=val,
        start=start,
        ar_orders=cfg.ar_orders,
        var_lags=cfg.var_lags,
        var_ridges=cfg.var_ridges,
    )
    if len(fit_codes[0]) != len(train_codes):  # chosen on a tail of train: refit on all of it
        ar, var = linear["linear_ar"], linear["ridge_var"]
        linear = {
            "linear_ar": bl.LinearAR(bins, order=ar.order).fit(train_codes),
            "ridge_var": RidgeVAR(bins, lags=var.lags, ridge=var.ridge).fit(train_codes),
        }
    selection["validation"] = source
    fitted = {
        "last_value": bl.LastValue(bins).fit(train_codes),
        **linear,
        "bigram": bl.Bigram(bins).fit(train_codes),
        "unigram": bl.Unigram(bins).fit(train_codes),
        "uniform": bl.Uniform(bins),
    }
    return fitted, selection
