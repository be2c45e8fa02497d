"""Realism of generated signals: compare any two sets of windows ``(N, C, T)`` at one ``sfreq``.

Each comparison returns plain numbers (JSON-safe) and :func:`compare` gathers them with flags:

- spectrum: Welch PSD per channel averaged over windows; per band (delta 1-4, theta 4-8, alpha
  8-13, beta 13-30, gamma 30-80 Hz, bands above Nyquist left out) the channel-mean of
  ``log10(P_generated / P_real)``, and the RMS log10 ratio over all frequencies in [1 Hz, Nyquist);
- channel structure: RMS difference of the off-diagonal correlation coefficients, and the
  relative Frobenius distance of the covariance matrices;
- amplitude: per channel Kolmogorov-Smirnov statistic, Wasserstein-1 distance divided by the real
  standard deviation, and Jensen-Shannon divergence (bits) of histograms on shared bins;
- a two-sample test: unbiased MMD² with a Gaussian kernel (median-distance bandwidth) on simple
  per-window features (channel-mean log band powers, relative band powers, log variance), with a
  permutation p-value;
- drift: the same statistics over consecutive segments of a long rollout, against real windows.

Flags are calibrated on real data (:func:`compare` with ``reference``): the held-out real windows
are also compared, in the same way, with ``n_reference_splits`` disjoint sets of real train
windows, each as large as the generated set. Each statistic's values over these real-vs-real
comparisons are its reference spread, and a generated-vs-real statistic is flagged when it lies
beyond their maximum: a real set of the same size lies beyond the maximum of ``k`` such values
with probability ``1 / (k + 1)`` per statistic (11% with the default 8 splits, 17% with 5), the
false-alarm rate of each flag; every value and the maximum are in the report:

- ``spectrum``: the max |band log10 ratio| or the RMS PSD log10 ratio beyond its reference max;
- ``channels``: the correlation-matrix RMS difference beyond its reference max;
- ``amplitude``: the mean KS statistic beyond its reference max;
- ``two_sample``: MMD² beyond its reference max *and* the permutation p-value below 0.05.

Without a reference the fixed :data:`THRESHOLDS` are used (``any band |log10 ratio| > 0.3``,
correlation RMS difference > 0.2, mean KS > 0.2, MMD p < 0.05) and the result says so.

Resolution: the Welch segments are ``min(T, 2 s)`` long, so windows of at least 2 s give a 0.5 Hz
frequency resolution (delta, 1-4 Hz, spans 6 bins); each result reports its resolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import signal as sps
from scipy import stats

BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 80.0),
}
THRESHOLDS = {"band_log10_ratio": 0.3, "correlation_rms": 0.2, "ks_mean": 0.2, "mmd_p_value": 0.05}
CALIBRATED = {
    "spectrum": [("spectrum", "max_abs_band_log10_ratio"), ("spectrum", "psd_log10_rms")],
    "channels": [("channels", "correlation_rms")],
    "amplitude": [("amplitude", "ks_mean")],
    "two_sample": [("two_sample", "mmd2")],
}
"""Flag -> the statistics (lower is better) compared with their real-vs-real reference spread."""


def _windows(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"{what}: expected windows (N, C, T), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: windows hold non-finite values")
    return x


def psd(x: Any, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD of windows ``(N, C, T)``: ``freqs (F,)`` Hz and ``power (N, C, F)`` (unit²/Hz).

    Segments are ``min(T, 2 s)`` long (:func:`psd_segment`) with 50% overlap (Hann window).
    """
    x = _windows(x, "psd")
    return sps.welch(x, fs=sfreq, nperseg=psd_segment(x.shape[-1], sfreq), axis=-1)


def psd_segment(n_times: int, sfreq: float) -> int:
    """Welch segment length in samples for windows of ``n_times``: ``min(n_times, 2 s)``; the
    frequency resolution is ``sfreq / psd_segment`` (0.5 Hz for windows of 2 s or more)."""
    return int(min(n_times, round(2 * sfreq)))


def band_power(x: Any, sfreq: float) -> tuple[np.ndarray, list[str]]:
    """Power in each band below Nyquist: ``(N, C, n_bands)`` (unit²) and the band names."""
    freqs, power = psd(x, sfreq)
    nyquist = sfreq / 2.0
    names, out = [], []
    df = freqs[1] - freqs[0]
    for name, (low, high) in BANDS.items():
        if low >= nyquist:
            continue
        sel = (freqs >= low) & (freqs < min(high, nyquist))
        if not sel.any():
            continue
        names.append(name)
        out.append(power[..., sel].sum(-1) * df)
    return np.stack(out, axis=-1), names


def compare_spectra(real: Any, generated: Any, sfreq: float) -> dict[str, Any]:
    """Band log-ratios and the RMS log10 PSD ratio of ``generated`` against ``real``."""
    real, generated = _windows(real, "real"), _windows(generated, "generated")
    _check_pair(real, generated)
    freqs, p_real = psd(real, sfreq)
    _, p_gen = psd(generated, sfreq)
    mean_real, mean_gen = p_real.mean(0) + 1e-30, p_gen.mean(0) + 1e-30  # (C, F)
    sel = freqs >= 1.0
    sel[-1] = False  # the Nyquist bin of a one-sided PSD is half-weighted; leave it out
    log_ratio = np.log10(mean_gen[:, sel] / mean_real[:, sel])
    bp_real, names = band_power(real, sfreq)
    bp_gen, _ = band_power(generated, sfreq)
    band_ratio = np.log10((bp_gen.mean(0) + 1e-30) / (bp_real.mean(0) + 1e-30)).mean(0)
    bands = {n: float(r) for n, r in zip(names, band_ratio)}
    return {
        "band_log10_ratio": bands,
        "max_abs_band_log10_ratio": float(np.max(np.abs(band_ratio))),
        "psd_log10_rms": float(np.sqrt(np.mean(log_ratio**2))),
    }


def _check_pair(real: np.ndarray, generated: np.ndarray) -> None:
    if real.shape[1] != generated.shape[1]:
        raise ValueError(f"real has {real.shape[1]} channels, generated {generated.shape[1]}")


def _channel_matrices(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centred = x - x.mean(axis=-1, keepdims=True)
    flat = np.moveaxis(centred, 1, 0).reshape(x.shape[1], -1)  # (C, N * T)
    cov = flat @ flat.T / flat.shape[1]
    std = np.sqrt(np.diag(cov)) + 1e-30
    return cov, cov / np.outer(std, std)


def compare_channels(real: Any, generated: Any) -> dict[str, float]:
    """Correlation RMS off-diagonal difference and covariance relative Frobenius distance."""
    real, generated = _windows(real, "real"), _windows(generated, "generated")
    _check_pair(real, generated)
    cov_r, cor_r = _channel_matrices(real)
    cov_g, cor_g = _channel_matrices(generated)
    n_chans = real.shape[1]
    off = ~np.eye(n_chans, dtype=bool)
    cor_rms = float(np.sqrt(np.mean((cor_g - cor_r)[off] ** 2))) if n_chans > 1 else 0.0
    cov_dist = float(np.linalg.norm(cov_g - cov_r) / (np.linalg.norm(cov_r) + 1e-30))
    return {"correlation_rms": cor_rms, "covariance_relative_distance": cov_dist}


def compare_amplitudes(
    real: Any, generated: Any, *, n_bins: int = 50, max_samples: int = 20000, seed: int = 0
) -> dict[str, Any]:
    """Per-channel amplitude distribution distances (KS, scaled Wasserstein-1, JS in bits).

    At most ``max_samples`` values per channel and set are used (drawn with ``seed``).
    """
    real, generated = _windows(real, "real"), _windows(generated, "generated")
    _check_pair(real, generated)
    rng = np.random.default_rng(seed)
    ks, wass, js = [], [], []
    for ch in range(real.shape[1]):
        a, b = real[:, ch].reshape(-1), generated[:, ch].reshape(-1)
        if a.size > max_samples:
            a = rng.choice(a, max_samples, replace=False)
        if b.size > max_samples:
            b = rng.choice(b, max_samples, replace=False)
        ks.append(stats.ks_2samp(a, b).statistic)
        wass.append(stats.wasserstein_distance(a, b) / (a.std() + 1e-30))
        lo, hi = np.quantile(np.concatenate([a, b]), [0.001, 0.999])
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, n_bins + 1)
        pa = np.histogram(np.clip(a, lo, hi), edges)[0] + 0.5
        pb = np.histogram(np.clip(b, lo, hi), edges)[0] + 0.5
        pa, pb = pa / pa.sum(), pb / pb.sum()
        m = 0.5 * (pa + pb)
        js.append(0.5 * np.sum(pa * np.log2(pa / m)) + 0.5 * np.sum(pb * np.log2(pb / m)))
    return {
        "ks_mean": float(np.mean(ks)),
        "ks_max": float(np.max(ks)),
        "wasserstein_over_std_mean": float(np.mean(wass)),
        "histogram_js_bits_mean": float(np.mean(js)),
        "ks_per_channel": [float(v) for v in ks],
    }


def window_features(x: Any, sfreq: float) -> np.ndarray:
    """Per-window features ``(N, F)``: channel-mean log10 band powers, relative band powers and
    log10 variance."""
    x = _windows(x, "window_features")
    power, _ = band_power(x, sfreq)
    log_bp = np.log10(power + 1e-30).mean(1)
    rel = (power / (power.sum(-1, keepdims=True) + 1e-30)).mean(1)
    log_var = np.log10(x.var(-1) + 1e-30).mean(1, keepdims=True)
    return np.concatenate([log_bp, rel, log_var], axis=1)


def mmd_test(
    features_a: Any, features_b: Any, *, n_permutations: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Two-sample MMD test with a Gaussian kernel.

    Features are standardised on the pooled sample; the bandwidth is the median pairwise
    distance; the statistic is the unbiased MMD²; the p-value is ``(1 + #{perm >= obs}) /
    (1 + n_permutations)`` over random relabellings drawn with ``seed``.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"mmd_test: need two (n >= 2, F) feature sets, got {a.shape}, {b.shape}")
    pooled = np.concatenate([a, b])
    pooled = (pooled - pooled.mean(0)) / (pooled.std(0) + 1e-12)
    sq = np.sum((pooled[:, None] - pooled[None]) ** 2, axis=-1)
    positive = sq[np.triu_indices(len(pooled), 1)]
    positive = positive[positive > 0]
    bandwidth2 = float(np.median(positive)) if positive.size else 1.0
    kernel = np.exp(-sq / bandwidth2)
    np.fill_diagonal(kernel, 0.0)
    n_a = len(a)

    def statistic(order: np.ndarray) -> float:
        k = kernel[np.ix_(order, order)]
        n, m = n_a, len(order) - n_a
        kaa, kbb, kab = k[:n, :n].sum(), k[n:, n:].sum(), k[:n, n:].sum()
        return kaa / (n * (n - 1)) + kbb / (m * (m - 1)) - 2 * kab / (n * m)

    observed = statistic(np.arange(len(pooled)))
    rng = np.random.default_rng(seed)
    perms = np.array([statistic(rng.permutation(len(pooled))) for _ in range(n_permutations)])
    p_value = (1.0 + np.sum(perms >= observed)) / (1.0 + n_permutations)
    return {"mmd2": float(observed), "p_value": float(p_value), "n_a": len(a), "n_b": len(b)}


def _compare_once(
    real: np.ndarray, generated: np.ndarray, sfreq: float, n_permutations: int, seed: int
) -> dict[str, Any]:
    return {
        "spectrum": compare_spectra(real, generated, sfreq),
        "channels": compare_channels(real, generated),
        "amplitude": compare_amplitudes(real, generated, seed=seed),
        "two_sample": mmd_test(
            window_features(real, sfreq),
            window_features(generated, sfreq),
            n_permutations=n_permutations,
            seed=seed,
        ),
    }


def compare(
    real: Any,
    generated: Any,
    sfreq: float,
    *,
    reference: Any = None,
    n_reference_splits: int = 5,
    n_permutations: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every comparison of ``generated`` against ``real`` windows, plus ``flags`` and ``realistic``.

    Parameters
    ----------
    real, generated : array, shape (N, C, T)
        Windows of the same channels and sampling frequency (counts may differ).
    sfreq : float
        Sampling frequency in Hz.
    reference : array, shape (M, C, T), optional
        Other real windows (e.g. from the train split) for the real-vs-real reference spread:
        ``n_reference_splits`` disjoint sets of ``len(generated)`` of them, spread evenly over
        the M, are compared with ``real`` as ``generated`` is (fewer splits when M is short; at
        least 2 are needed). Without it the fixed :data:`THRESHOLDS` flag problems.
    n_permutations : int
        Permutations of each MMD test (smallest p-value ``1 / (1 + n_permutations)``).

    Returns
    -------
    dict
        ``spectrum``, ``channels``, ``amplitude``, ``two_sample`` (see the module docstring),
        ``settings`` (windows, seconds, PSD resolution, permutations), ``reference`` (per
        calibrated statistic its real-vs-real ``values`` and ``max``, or None), ``flag_rule``,
        ``flags`` and ``realistic``.
    """
    real, generated = _windows(real, "real"), _windows(generated, "generated")
    _check_pair(real, generated)
    out = _compare_once(real, generated, sfreq, n_permutations, seed)
    n_times = generated.shape[-1]
    out["settings"] = {
        "n_real_windows": len(real),
        "n_generated_windows": len(generated),
        "seconds": n_times / sfreq,
        "psd_resolution_hz": sfreq / psd_segment(n_times, sfreq),
        "n_permutations": int(n_permutations),
    }
    if reference is None:
        out["reference"] = None
        out["flag_rule"] = f"fixed thresholds {THRESHOLDS}"
        flags = {
            "spectrum": out["spectrum"]["max_abs_band_log10_ratio"]
            > THRESHOLDS["band_log10_ratio"],
            "channels": out["channels"]["correlation_rms"] > THRESHOLDS["correlation_rms"],
            "amplitude": out["amplitude"]["ks_mean"] > THRESHOLDS["ks_mean"],
            "two_sample": out["two_sample"]["p_value"] < THRESHOLDS["mmd_p_value"],
        }
    else:
        out["reference"] = reference_spread(
            real, reference, len(generated), sfreq, n_splits=n_reference_splits, seed=seed
        )
        out["flag_rule"] = (
            "a statistic beyond the max of its real-vs-real values (held-out real vs "
            f"{out['reference']['n_splits']} disjoint sets of {len(generated)} real train "
            "windows; false-alarm rate 1 / (splits + 1) per statistic); two_sample also needs "
            "the MMD p-value < 0.05"
        )
        beyond = {
            flag: any(
                out[group][name] > out["reference"]["statistics"][f"{group}.{name}"]["max"]
                for group, name in stats_
            )
            for flag, stats_ in CALIBRATED.items()
        }
        beyond["two_sample"] &= out["two_sample"]["p_value"] < THRESHOLDS["mmd_p_value"]
        flags = beyond
    out["flags"] = flags
    out["realistic"] = not any(flags.values())
    return out


def reference_spread(
    real: Any,
    reference: Any,
    n_windows: int,
    sfreq: float,
    *,
    n_splits: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Real-vs-real values of the calibrated statistics (:data:`CALIBRATED`).

    ``real`` is compared with each of ``n_splits`` disjoint sets of ``n_windows`` windows of
    ``reference`` (consecutive blocks of a random permutation drawn with ``seed``; fewer sets when
    ``reference`` is short). Returns ``n_splits`` (used), ``n_windows`` and, per statistic
    ``"group.name"``, its ``values`` and ``max``. MMD p-values are not needed here, so the MMD
    statistics are computed without permutations.
    """
    real, reference = _windows(real, "real"), _windows(reference, "reference")
    _check_pair(real, reference)
    n_used = min(n_splits, len(reference) // max(n_windows, 1))
    if n_used < 2:
        raise ValueError(
            f"reference_spread: {len(reference)} reference windows hold fewer than 2 disjoint "
            f"sets of {n_windows} (the generated count); give more real train windows"
        )
    order = np.random.default_rng(seed).permutation(len(reference))
    values: dict[str, list[float]] = {
        f"{g}.{n}": [] for stats_ in CALIBRATED.values() for g, n in stats_
    }
    for i in range(n_used):
        part = reference[order[i * n_windows : (i + 1) * n_windows]]
        scores = _compare_once(real, part, sfreq, 0, seed + i)
        for key in values:
            group, name = key.split(".")
            values[key].append(float(scores[group][name]))
    return {
        "n_splits": int(n_used),
        "n_windows": int(n_windows),
        "statistics": {k: {"values": v, "max": float(np.max(v))} for k, v in values.items()},
    }


def drift(rollout: Any, real: Any, sfreq: float) -> dict[str, Any]:
    """Statistics of consecutive real-window-long segments of long rollouts against real windows.

    Parameters
    ----------
    rollout : array, shape (N, C, T_long)
        Long generated continuations, ``T_long`` at least two real window lengths.
    real : array, shape (M, C, T)
        Real windows.

    Returns
    -------
    dict
        Per segment: ``log10_variance_ratio`` (channel-mean log10 of generated / real variance)
        and ``max_abs_band_log10_ratio``; plus ``variance_slope_per_segment`` (least-squares slope
        of the first list) and ``segment_seconds``.
    """
    rollout, real = _windows(rollout, "rollout"), _windows(real, "real")
    _check_pair(real, rollout)
    seg = real.shape[-1]
    n_seg = rollout.shape[-1] // seg
    if n_seg < 2:
        raise ValueError(
            f"drift: rollout of {rollout.shape[-1]} samples holds < 2 windows of {seg}"
        )
    var_real = real.var(-1).mean(0) + 1e-30  # (C,)
    var_ratio, band_ratio = [], []
    for i in range(n_seg):
        part = rollout[..., i * seg : (i + 1) * seg]
        var_ratio.append(float(np.log10((part.var(-1).mean(0) + 1e-30) / var_real).mean()))
        band_ratio.append(compare_spectra(real, part, sfreq)["max_abs_band_log10_ratio"])
    slope = float(np.polyfit(np.arange(n_seg), var_ratio, 1)[0])
    return {
        "log10_variance_ratio": var_ratio,
        "max_abs_band_log10_ratio": band_ratio,
        "variance_slope_per_segment": slope,
        "segment_seconds": seg / sfreq,
    }
