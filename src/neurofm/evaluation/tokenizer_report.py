"""``neurofm tokenize``: fit a tokenizer on the train split, encode a prepared store, report.

The report measures the tokenizer on a held-out split (never the one it was fitted on):

- time: RMSE and R² per channel of ``decode(encode(x))`` against ``x``, and RMSE / std;
- spectrum: Welch PSD (2 s Hann segments, 50 % overlap) of both, and per band (delta 0.5-4,
  theta 4-8, alpha 8-13, beta 13-30, gamma 30-50 Hz) the channel mean of
  ``log10(P_reconstructed / P_original)`` and of its absolute value;
- codes: usage histogram, perplexity ``2^H`` (H the empirical entropy in bits), unused codes;
- size: codes per sample, bits per sample (``log2 V`` per code, and the entropy bound), and the
  compression ratio against float32 samples;
- clipping: samples outside the fitted range; speed: channel-samples per second through
  ``encode`` and ``decode``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from neurofm.data.store import PreparedStore, StoredRecording
from neurofm.errors import ConfigError
from neurofm.fileio import write_json_atomic
from neurofm.tokenizers.bands import BAND_NAMES, DEFAULT_BANDS
from neurofm.tokenizers.base import Tokenizer
from neurofm.types import TokenizerOutput

CODE_STORE_VERSION = 1


@dataclass
class TokenizeDataConfig:
    path: str  # folder of the prepared store (made by `neurofm prepare`)
    split: str = "train"  # split the tokenizer is fitted on
    eval_split: str | None = None  # held-out split of the report; None: "val", else "test"

    PRESETS: ClassVar[dict[str, dict]] = {}


@dataclass
class ReportConfig:
    max_eval_seconds: float | None = None  # evaluate at most this much held-out data per segment
    example_channel: int = 0  # channel index drawn in the example trace
    example_seconds: float = 4.0  # length of the example trace (s)

    PRESETS: ClassVar[dict[str, dict]] = {}

    def __post_init__(self) -> None:
        if self.max_eval_seconds is not None and not self.max_eval_seconds > 0:
            raise ValueError(f"max_eval_seconds must be > 0, got {self.max_eval_seconds}")
        if self.example_channel < 0 or not self.example_seconds > 0:
            raise ValueError("example_channel must be >= 0 and example_seconds > 0")


def split_segments(store: PreparedStore, split: str) -> list[tuple[StoredRecording, int, int]]:
    """``(recording, start, stop)`` of every segment of ``manifest["splits"][split]``.

    Segments are ``{"recording", "start", "stop"}`` dicts (a bare recording id means the whole
    recording); errors name the manifest, the segment and the problem.
    """
    where = store.root / "manifest.json"
    splits = store.manifest.get("splits") or {}
    if split not in splits:
        raise ConfigError(f"data.split: no split {split!r} in {where}; splits: {sorted(splits)}")
    ids = {rec.id: rec for rec in store.recordings}
    out = []
    for k, seg in enumerate(splits[split]):
        seg = {"recording": seg} if isinstance(seg, str) else seg
        rec = ids.get(seg.get("recording"))
        if rec is None:
            raise ConfigError(
                f"{where}: splits.{split}[{k}] names unknown recording {seg.get('recording')!r}"
            )
        start, stop = int(seg.get("start", 0)), int(seg.get("stop", rec.n_times))
        if not 0 <= start < stop <= rec.n_times:
            raise ConfigError(
                f"{where}: splits.{split}[{k}] [{start}, {stop}) is not a non-empty "
                f"range inside the {rec.n_times} samples of {rec.id!r}"
            )
        out.append((rec, start, stop))
    if not out:
        raise ConfigError(f"{where}: split {split!r} holds no segments")
    return out


def held_out_split(store: PreparedStore, requested: str | None, fit_split: str) -> str:
    """The report's split: ``requested``, else ``val``, else ``test``; never the fit split."""
    splits = store.manifest.get("splits") or {}
    if requested is None:
        requested = next((s for s in ("val", "test") if splits.get(s)), None)
        if requested is None:
            raise ConfigError(
                f"{store.root / 'manifest.json'}: no 'val' or 'test' split to report "
                f"on; splits: {sorted(splits)}"
            )
    if requested == fit_split:
        raise ConfigError(f"data.eval_split: {requested!r} is the split the tokenizer is fitted on")
    return requested


def fit_on_split(tokenizer: Tokenizer, store: PreparedStore, split: str) -> Tokenizer:
    """Fit ``tokenizer`` on the segments of ``split``; ``fitted_on`` names store and split."""
    segments = split_segments(store, split)
    data = (rec.array[start:stop].T for rec, start, stop in segments)
    ident = store.fingerprint or store.manifest.get("name", store.root.name)
    return tokenizer.fit(data, fitted_on=f"{ident}:{split}")


def _code_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(
        np.uint8 if vocab_size <= 256 else np.uint16 if vocab_size <= 65536 else np.int64
    )


def encode_store(
    tokenizer: Tokenizer, store: PreparedStore, output: str | Path, tokenizer_dir: str = "tokenizer"
) -> dict[str, Any]:
    """Encode every recording into ``output/codes/<id>.npy`` and write ``output/codes/manifest.json``.

    Per-sample tokenizers (codes ``B C T``) write ``(C, T)`` codes, flat ones ``(T_tokens,)``, in
    the smallest unsigned type that holds the vocabulary; continuous tokenizers write their
    embeddings (float32) instead. The store's splits (sample ranges) are copied alongside.
    """
    folder = Path(output) / "codes"
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for rec in store.recordings:
        result = tokenizer.encode(np.asarray(rec.array).T)
        if result.codes is not None:
            arr = np.asarray(result.codes).astype(_code_dtype(int(tokenizer.vocab_size)))
            kind = "codes"
        else:
            arr, kind = np.asarray(result.embeddings, dtype=np.float32), "embeddings"
        np.save(folder / f"{rec.id}.npy", arr)
        entries.append(
            {
                "id": rec.id,
                "file": f"{rec.id}.npy",
                "kind": kind,
                "shape": list(arr.shape),
                "dtype": str(arr.dtype),
                "n_clipped": int(result.n_clipped),
                "n_samples": rec.n_times * rec.n_chans,
            }
        )
    manifest = {
        "format_version": CODE_STORE_VERSION,
        "tokenizer": tokenizer.registry_name,
        "tokenizer_dir": f"../{tokenizer_dir}",
        "vocab_size": tokenizer.vocab_size,
        "codes_layout": tokenizer.codes_layout,
        "fitted_on": tokenizer.fitted_on,
        "source": {"path": str(store.root), "fingerprint": store.fingerprint},
        "splits": store.manifest.get("splits", {}),
        "recordings": entries,
    }
    write_json_atomic(folder / "manifest.json", manifest)
    return manifest


def _band_powers(x: np.ndarray, sfreq: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch PSD ``(C, F)`` of ``x (C, T)`` and the power per default band ``(C, n_bands)``."""
    from scipy.signal import welch

    freqs, power = welch(x, fs=sfreq, nperseg=int(min(x.shape[-1], round(2 * sfreq))), axis=-1)
    bands = np.stack(
        [power[:, (freqs >= lo) & (freqs < hi)].sum(-1) for lo, hi in DEFAULT_BANDS], axis=-1
    )
    return freqs, power, bands


def code_statistics(
    codes: np.ndarray, vocab_size: int, n_samples: int, ignore: list[int] | None = None
) -> dict[str, Any]:
    """Usage histogram, perplexity, unused codes and bits per sample of ``codes`` (any shape)."""
    flat = np.asarray(codes, dtype=np.int64).reshape(-1)
    if ignore:
        flat = flat[~np.isin(flat, ignore)]
    counts = np.bincount(flat, minlength=vocab_size)
    p = counts[counts > 0] / max(flat.size, 1)
    entropy = float(-(p * np.log2(p)).sum())
    per_sample = flat.size / max(n_samples, 1)
    bits_fixed = per_sample * math.log2(vocab_size)
    bits_entropy = per_sample * entropy
    return {
        "vocab_size": int(vocab_size),
        "n_codes": int(flat.size),
        "codes_per_sample": per_sample,
        "entropy_bits_per_code": entropy,
        "perplexity": float(2.0**entropy),
        "n_used_codes": int((counts > 0).sum()),
        "n_unused_codes": int((counts == 0).sum()),
        "bits_per_sample": bits_fixed,
        "entropy_bits_per_sample": bits_entropy,
        "compression_ratio_vs_float32": 32.0 / bits_fixed if bits_fixed else None,
        "entropy_compression_ratio_vs_float32": 32.0 / bits_entropy if bits_entropy else None,
        "histogram": counts.tolist(),
    }


def tokenizer_report(
    tokenizer: Tokenizer,
    store: PreparedStore,
    split: str,
    output: str | Path,
    config: ReportConfig | None = None,
) -> dict[str, Any]:
    """Measure ``tokenizer`` on the segments of ``split``; write ``report.json`` and PNG plots."""
    config = config or ReportConfig()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    segments = split_segments(store, split)
    sfreq = segments[0][0].sfreq
    originals, recons, all_codes = [], [], []
    n_clipped, t_encode, t_decode = 0, 0.0, 0.0
    for rec, start, stop in segments:
        if config.max_eval_seconds is not None:
            stop = min(stop, start + int(round(config.max_eval_seconds * rec.sfreq)))
        x = np.ascontiguousarray(rec.array[start:stop].T, dtype=np.float32)  # (C, T)
        tic = time.perf_counter()
        encoded: TokenizerOutput = tokenizer.encode(x)
        t_encode += time.perf_counter() - tic
        tic = time.perf_counter()
        recon = np.asarray(tokenizer.decode(encoded), dtype=np.float32)
        t_decode += time.perf_counter() - tic
        if recon.shape != x.shape:
            raise ValueError(
                f"tokenizer {tokenizer.registry_name!r}: decode gave shape "
                f"{recon.shape} for an input of shape {x.shape}"
            )
        originals.append(x)
        recons.append(recon)
        n_clipped += encoded.n_clipped
        if encoded.codes is not None:
            all_codes.append(np.asarray(encoded.codes).reshape(-1))
    x_all = np.concatenate(originals, axis=1).astype(np.float64)
    r_all = np.concatenate(recons, axis=1).astype(np.float64)
    n_samples = int(x_all.size)
    err = r_all - x_all
    rmse = np.sqrt((err**2).mean(axis=1))
    std = x_all.std(axis=1)
    sst = ((x_all - x_all.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    r2 = 1.0 - (err**2).sum(axis=1) / np.where(sst > 0, sst, np.nan)
    weights = np.array([o.shape[1] for o in originals], dtype=np.float64)
    spectra = [(_band_powers(o, sfreq), _band_powers(r, sfreq)) for o, r in zip(originals, recons)]
    freqs = spectra[0][0][0]
    same_grid = all(len(s[0][0]) == len(freqs) for s in spectra)
    band_orig = np.average([s[0][2] for s in spectra], axis=0, weights=weights)
    band_recon = np.average([s[1][2] for s in spectra], axis=0, weights=weights)
    log_ratio = np.log10((band_recon + 1e-300) / (band_orig + 1e-300))  # (C, n_bands)
    names = [rec.sensors.names for rec, _, _ in segments][0]
    report: dict[str, Any] = {
        "tokenizer": tokenizer.registry_name,
        "fitted_on": tokenizer.fitted_on,
        "split": split,
        "n_segments": len(segments),
        "n_chans": int(x_all.shape[0]),
        "sfreq": sfreq,
        "n_samples": n_samples,
        "n_clipped": int(n_clipped),
        "clipped_fraction": n_clipped / max(n_samples, 1),
        "time": {
            "rmse": float(np.sqrt((err**2).mean())),
            "rmse_over_std": float(np.sqrt((err**2).mean()) / max(x_all.std(), 1e-300)),
            "r2_mean": float(np.nanmean(r2)),
            "r2_min": float(np.nanmin(r2)),
            "rmse_per_channel": dict(zip(names, rmse.tolist())),
            "r2_per_channel": dict(zip(names, [None if np.isnan(v) else float(v) for v in r2])),
            "std_per_channel": dict(zip(names, std.tolist())),
        },
        "spectrum": {
            "bands_hz": {n: list(b) for n, b in zip(BAND_NAMES, DEFAULT_BANDS)},
            "band_log10_ratio_mean": dict(zip(BAND_NAMES, log_ratio.mean(0).tolist())),
            "band_abs_log10_ratio_mean": dict(zip(BAND_NAMES, np.abs(log_ratio).mean(0).tolist())),
        },
        "speed": {
            "encode_samples_per_s": n_samples / max(t_encode, 1e-12),
            "decode_samples_per_s": n_samples / max(t_decode, 1e-12),
            "realtime_factor_encode": n_samples / max(t_encode, 1e-12) / (sfreq * x_all.shape[0]),
        },
        "codes": None,
    }
    if all_codes:
        ignore = [tokenizer.pad_id] if hasattr(tokenizer, "pad_id") else None
        report["codes"] = code_statistics(
            np.concatenate(all_codes), int(tokenizer.vocab_size), n_samples, ignore
        )
    if same_grid:
        psd_orig = np.average([s[0][1].mean(0) for s in spectra], axis=0, weights=weights)
        psd_recon = np.average([s[1][1].mean(0) for s in spectra], axis=0, weights=weights)
        _plot(output, report, freqs, psd_orig, psd_recon, originals[0], recons[0], config, names)
    write_json_atomic(output / "report.json", report)
    return report


def _plot(
    output: Path,
    report: dict[str, Any],
    freqs: np.ndarray,
    psd_orig: np.ndarray,
    psd_recon: np.ndarray,
    example: np.ndarray,
    example_recon: np.ndarray,
    config: ReportConfig,
    names: list[str],
) -> None:
    """Code histogram, channel-mean PSD overlay and an example trace, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = report["tokenizer"]
    if report["codes"] is not None:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(
            np.arange(len(report["codes"]["histogram"])), report["codes"]["histogram"], width=1.0
        )
        ax.set(
            xlabel="code",
            ylabel="count",
            yscale="log",
            title=f"{name}: code usage (perplexity {report['codes']['perplexity']:.1f})",
        )
        fig.tight_layout()
        fig.savefig(output / "code_histogram.png", dpi=100)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.semilogy(freqs, psd_orig, label="original")
    ax.semilogy(freqs, psd_recon, label="reconstructed", linestyle="--")
    ax.set(xlabel="frequency (Hz)", ylabel="PSD (unit²/Hz, channel mean)", title=f"{name}: PSD")
    ax.legend()
    fig.tight_layout()
    fig.savefig(output / "psd_overlay.png", dpi=100)
    plt.close(fig)
    channel = min(config.example_channel, example.shape[0] - 1)
    n = min(example.shape[1], int(config.example_seconds * report["sfreq"]))
    t = np.arange(n) / report["sfreq"]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(t, example[channel, :n], label="original", linewidth=1)
    ax.plot(t, example_recon[channel, :n], label="reconstructed", linewidth=1, linestyle="--")
    ax.set(xlabel="time (s)", title=f"{name}: channel {names[channel]}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(output / "example_trace.png", dpi=100)
    plt.close(fig)


def run_tokenize(config: dict[str, Any], output: str | Path) -> dict[str, Any]:
    """The work of ``neurofm tokenize``: validate, fit on train, save, encode, report.

    Parameters
    ----------
    config : dict
        ``{"data": {...}, "tokenizer": {"name": ..., ...}, "report": {...}}`` (see
        :class:`TokenizeDataConfig`, the tokenizer's config, :class:`ReportConfig`).
    output : path
        Folder receiving ``config.yaml``, ``tokenizer/``, ``codes/`` and ``report/``.

    Returns
    -------
    dict
        The report (also written to ``output/report/report.json``).
    """
    from neurofm.config import build_config, save_yaml
    from neurofm.registry import TOKENIZERS, create

    data_cfg = build_config(TokenizeDataConfig, config.get("data") or {}, prefix="data")
    report_cfg = build_config(ReportConfig, config.get("report") or {}, prefix="report")
    if not config.get("tokenizer"):
        raise ConfigError(
            f"tokenizer: required section is missing; allowed names: "
            f"{', '.join(TOKENIZERS.names())}"
        )
    tokenizer = create(TOKENIZERS, config["tokenizer"], key="tokenizer")
    store = PreparedStore.open(data_cfg.path)
    eval_split = held_out_split(store, data_cfg.eval_split, data_cfg.split)
    split_segments(store, eval_split)  # validate both splits before any work
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    save_yaml(
        {
            "data": {**config.get("data", {}), "eval_split": eval_split},
            "tokenizer": config["tokenizer"],
            "report": config.get("report") or {},
            "output": str(output),
        },
        output / "config.yaml",
    )
    fit_on_split(tokenizer, store, data_cfg.split)
    tokenizer.save(output / "tokenizer")
    encode_store(tokenizer, store, output)
    return tokenizer_report(tokenizer, store, eval_split, output / "report", report_cfg)
