"""Real EEG as mu-law codes, and cached streaming of a model, for the cache and attention tests
of this folder."""

from __future__ import annotations

import math

import numpy as np
import torch


def real_eeg_codes(
    shared_data, n_times: int, vocab_size: int, *, n_chans: int = 16, start: int = 800
) -> torch.Tensor:
    """(1, n_chans, n_times) mu-law codes of the first ``n_chans`` channels of a real EEGBCI run
    from sample ``start`` (each channel robustly scaled)."""
    import mne

    raw = mne.io.read_raw_edf(
        shared_data / "eegbci_S001" / "S001R04.edf", preload=False, verbose="error"
    )
    x = raw.get_data(picks=list(range(n_chans)), start=start, stop=start + n_times)
    x = x - np.median(x, axis=1, keepdims=True)
    x = np.clip(x / np.quantile(np.abs(x), 0.99, axis=1, keepdims=True), -1.0, 1.0)
    mu = vocab_size - 1
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    return torch.from_numpy(np.rint((y + 1) / 2 * mu).astype(np.int64))[None]


@torch.no_grad()
def streamed(model, codes: torch.Tensor, n_prompt: int) -> tuple[torch.Tensor, object]:
    """Logits (B, C, T, V) of a cached model over ``codes`` (B, C, T): the first ``n_prompt``
    steps in one call, then one step per call; and the final cache."""
    out = model(codes[..., :n_prompt], use_cache=True)
    steps, past = [out.logits], out.past
    for t in range(n_prompt, codes.shape[-1]):
        out = model(codes[..., t : t + 1], past=past, use_cache=True)
        steps.append(out.logits)
        past = out.past
    return torch.cat(steps, dim=2), past
