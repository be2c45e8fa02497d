"""Multi-scale discrete tokens over frequency-band stages: the tokenizer of the VAR variant.

Visual Autoregressive Modeling (Tian et al. 2024, arXiv:2404.02905) quantizes an image into
token maps of growing size, each one quantizing what the coarser ones left (a residual
quantizer across scales). Here the scales are the cumulative frequency bands: stage ``k``
quantizes the residual ``level_k - reconstruction of stages < k`` (mostly band ``k``, plus what
the coarser stages got wrong), so the decoded stages add up to the cumulative levels and
quantization errors of a stage are corrected by the next ones.

Tokens: stage ``k`` cuts its residual (C, T) into ``stage_tokens[k]`` patches of all channels,
each a vector of ``C * T / stage_tokens[k]`` values quantized by that stage's codebook
(``vector_quantize_pytorch.VectorQuantize``: k-means initialisation, then exponential moving
average updates and dead-code replacement over ``fit_epochs`` passes of the train windows,
stage after stage). Low bands use long patches (few tokens), high bands short ones, as VAR's
scales grow. Codes are one flat sequence (B, N), stage by stage, each stage with its own
``codebook_size`` codes. ``n_chans`` and ``n_times`` may be left to ``fit`` (from the train
windows); they are saved with the fitted state.

Inputs are band stacks (B, L, C, T) (``data.bands`` of a fit config) or signals (B, C, T) /
(C, T), whose cumulative bands are computed with ``sfreq``, ``bands`` and ``n_taps``. Signals
are divided by a per-channel scale fitted on train (the standard deviation of the full level).
``decode`` returns the reconstructed levels (B, L, C, T), or the last level for signal inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from neurofm import checks
from neurofm.errors import CheckpointError
from neurofm.registry import TOKENIZERS
from neurofm.tokenizers.bands import DEFAULT_BANDS, check_bands, cumulative_frequency_levels
from neurofm.tokenizers.base import Tokenizer, like_input, to_tensor
from neurofm.types import TokenizerOutput


def _default_bands() -> list[list[float]]:
    return [list(band) for band in DEFAULT_BANDS]


@dataclass
class BandRVQConfig:
    """Configuration of :class:`BandRVQTokenizer`."""

    n_chans: int | None = None  # channels C; None: from the fit data
    n_times: int | None = None  # window length T; None: from the fit data
    stage_tokens: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32])  # per stage
    codebook_size: int = 512  # codes per stage
    sfreq: float = 160.0  # sampling rate of signal inputs (Hz)
    bands: list[list[float]] = field(default_factory=_default_bands)  # [low, high] Hz per stage
    n_taps: int | None = None  # FIR length of the band filters (odd); None: from the bands
    fit_epochs: int = 10  # passes over the train windows per stage
    fit_batch_size: int = 256  # patches per codebook update
    decay: float = 0.8  # EMA decay of the codebooks
    kmeans_iters: int = 10  # k-means iterations of the codebook initialisation
    dead_code_threshold: float = 2.0  # codes used less (EMA count) are re-drawn from the data
    seed: int = 0  # seed of the fitting (k-means draws, batch order)

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "n_chans": 4,
            "n_times": 32,
            "stage_tokens": [4, 4, 8],
            "codebook_size": 16,
            "sfreq": 100.0,
            "bands": [[1.0, 8.0], [8.0, 20.0], [20.0, 40.0]],
            "n_taps": 31,
            "fit_epochs": 2,
            "fit_batch_size": 64,
        },
        "small": {"codebook_size": 256},
        "base": {"codebook_size": 1024, "fit_epochs": 20},
    }

    def __post_init__(self) -> None:
        checks.optional_positive(self, "n_chans", "n_times")
        checks.positive(self, "codebook_size", "fit_epochs")
        checks.positive(self, "fit_batch_size", "kmeans_iters", "sfreq")
        checks.fraction(self, "decay")
        checks.non_negative(self, "dead_code_threshold")
        if len(self.stage_tokens) != len(self.bands):
            raise ValueError(
                f"stage_tokens: one count per band ({len(self.bands)}), got {self.stage_tokens}"
            )
        finest = max(self.stage_tokens)
        if min(self.stage_tokens) < 1 or any(finest % n for n in self.stage_tokens):
            raise ValueError(
                f"stage_tokens: each >= 1 and dividing the largest ({finest}), got "
                f"{self.stage_tokens} (the stages' token grids nest)"
            )
        if self.n_times is not None:
            self.check_length(self.n_times)
        check_bands(self.bands, self.sfreq)
        if self.n_taps is not None and (self.n_taps < 1 or self.n_taps % 2 == 0):
            raise ValueError(f"n_taps must be a positive odd number, got {self.n_taps}")

    def check_length(self, n_times: int) -> None:
        """Raise a ValueError unless every stage's token count divides ``n_times``."""
        bad = [n for n in self.stage_tokens if n_times % n]
        if bad:
            raise ValueError(
                f"stage_tokens: {bad} do not divide the window length {n_times} (patches of "
                "equal length; nothing is padded)"
            )

    @property
    def patch_lengths(self) -> list[int]:
        """Samples per token of each stage, ``n_times // stage_tokens[k]``."""
        if self.n_times is None:
            raise ValueError("band_rvq: n_times is set by fit (or the config)")
        return [self.n_times // n for n in self.stage_tokens]


def to_patches(x: Tensor, patch: int) -> Tensor:
    """(B, C, T) -> (B, T // patch, C * patch): all channels of each patch as one vector."""
    b, c, t = x.shape
    return x.reshape(b, c, t // patch, patch).permute(0, 2, 1, 3).reshape(b, t // patch, c * patch)


def from_patches(v: Tensor, n_chans: int) -> Tensor:
    """Invert :func:`to_patches`: (B, N, C * patch) -> (B, C, N * patch)."""
    b, n, d = v.shape
    patch = d // n_chans
    return v.reshape(b, n, n_chans, patch).permute(0, 2, 1, 3).reshape(b, n_chans, n * patch)


@TOKENIZERS.register("band_rvq", config=BandRVQConfig)
class BandRVQTokenizer(Tokenizer):
    """Residual quantizer over band stages: band stacks or signals -> codes (B, N)."""

    codes_layout = "B T"
    requires_fit = True

    def __init__(self, config: BandRVQConfig) -> None:
        super().__init__(config)
        self.quantizers = nn.ModuleList()
        if config.n_chans is not None and config.n_times is not None:
            self._build()
        self.register_buffer("scale", torch.ones(config.n_chans or 1))

    def _build(self) -> None:
        """Make one ``VectorQuantize`` per stage (needs ``n_chans`` and ``n_times``)."""
        from vector_quantize_pytorch import VectorQuantize

        cfg = self.config
        self.quantizers = nn.ModuleList(
            VectorQuantize(
                dim=cfg.n_chans * p,
                codebook_size=cfg.codebook_size,
                decay=cfg.decay,
                kmeans_init=True,
                kmeans_iters=cfg.kmeans_iters,
                threshold_ema_dead_code=cfg.dead_code_threshold,
                commitment_weight=0.0,
            )
            for p in cfg.patch_lengths
        )

    @property
    def n_stages(self) -> int:
        """Number of stages L (one per band)."""
        return len(self.config.bands)

    @property
    def vocab_size(self) -> int:
        return self.config.codebook_size

    def codes_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(B, N) for (B, C, T) signals or (B, L, C, T) stacks; (N,) for one (C, T) signal."""
        n = sum(self.config.stage_tokens)
        return (n,) if len(input_shape) == 2 else (input_shape[0], n)

    def stage_slices(self) -> list[slice]:
        """Where each stage's tokens sit in the flat code sequence."""
        bounds = np.cumsum([0, *self.config.stage_tokens])
        return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def _set_shape(self, n_chans: int, n_times: int) -> None:
        """Take ``n_chans`` / ``n_times`` from the fit data where the config leaves them open."""
        cfg = self.config
        for name, value in (("n_chans", n_chans), ("n_times", n_times)):
            given = getattr(cfg, name)
            if given is not None and given != value:
                raise ValueError(f"fit data: {name} is {value}, the config says {given}")
        cfg.check_length(n_times)
        cfg.n_chans, cfg.n_times = n_chans, n_times
        self._build()  # fresh codebooks: fitting again starts over

    # -- inputs --------------------------------------------------------------------------------
    def _levels_of_signal(self, signal: np.ndarray) -> np.ndarray:
        cfg = self.config
        return cumulative_frequency_levels(signal, cfg.sfreq, cfg.bands, cfg.n_taps)

    def _stacks(self, x: Any, name: str) -> tuple[Tensor, str, bool]:
        """Band stacks (B, L, C, T) float32 from ``x``; the input kind; whether it was unbatched."""
        t = to_tensor(x)
        cfg = self.config
        if t.ndim in (2, 3):  # signals (C, T) / (B, C, T)
            single = t.ndim == 2
            signals = t[None] if single else t
            arr = signals.detach().cpu().double().numpy()
            levels = np.stack([self._levels_of_signal(s) for s in arr])
            stacks, kind = torch.from_numpy(levels).to(t.device, torch.float32), "signal"
        elif t.ndim == 4:
            single, stacks, kind = False, t.float(), "bands"
        else:
            raise ValueError(
                f"{name}: expected signals (C, T) / (B, C, T) or band stacks (B, L, C, T), "
                f"got shape {tuple(t.shape)}"
            )
        n_chans, n_times = cfg.n_chans or stacks.shape[2], cfg.n_times or stacks.shape[3]
        expected = (self.n_stages, n_chans, n_times)
        if tuple(stacks.shape[1:]) != expected:
            raise ValueError(
                f"{name}: tokenizer 'band_rvq' takes bands (B, L, C, T) = (B, {expected[0]}, "
                f"{expected[1]}, {expected[2]}) (n_times exactly: nothing is padded), got "
                f"{tuple(stacks.shape)}"
            )
        return stacks, kind, single

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, data: Any, *, fitted_on: str = "unspecified") -> BandRVQTokenizer:
        """Fit the scale and the codebooks, stage after stage.

        Parameters
        ----------
        data : array, tensor or iterable
            Signals (B, C, T), band stacks (B, L, C, T), or an iterable of (C, T) signals or
            (L, C, T) band stacks (the train windows).
        fitted_on : str
            Identifier of the data, saved with the state.
        """
        stacks = self._fit_stacks(data)
        cfg = self.config
        self._set_shape(stacks.shape[2], stacks.shape[3])
        std = stacks[:, -1].transpose(0, 1).reshape(cfg.n_chans, -1).std(dim=1)
        self.scale = torch.where(std > 0, std, torch.ones_like(std))
        x = stacks / self.scale[:, None]
        recon = torch.zeros_like(x[:, 0])
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(cfg.seed)
            for k, (vq, patch) in enumerate(zip(self.quantizers, cfg.patch_lengths)):
                vectors = to_patches(x[:, k] - recon, patch).reshape(-1, cfg.n_chans * patch)
                vq.train()
                for _ in range(cfg.fit_epochs):
                    order = torch.randperm(len(vectors))
                    for start in range(0, len(vectors), cfg.fit_batch_size):
                        vq(vectors[order[start : start + cfg.fit_batch_size]][None])
                vq.eval()
                codes = self._nearest(vq, to_patches(x[:, k] - recon, patch))
                recon = recon + from_patches(vq.codebook[codes], cfg.n_chans)
        self.mark_fitted(str(fitted_on))
        return self

    def _fit_stacks(self, data: Any) -> Tensor:
        if isinstance(data, (np.ndarray, Tensor)):
            return self._stacks(data, "fit data")[0].cpu()
        items = []
        for i, item in enumerate(data):
            t = to_tensor(item)
            if t.ndim not in (2, 3):
                raise ValueError(
                    f"fit data item {i}: expected a signal (C, T) or bands (L, C, T), got "
                    f"{tuple(t.shape)}"
                )
            items.append(self._stacks(t[None], f"fit data item {i}")[0].cpu())
        if not items:
            raise ValueError("fit data: no window to fit the band_rvq tokenizer on")
        return torch.cat(items)

    @staticmethod
    def _nearest(vq: nn.Module, vectors: Tensor) -> Tensor:
        """Index of the nearest code of ``vq`` for each vector (..., D) -> (...)."""
        book = vq.codebook.to(vectors)
        flat = vectors.reshape(-1, vectors.shape[-1])
        d = flat.square().sum(-1, keepdim=True) - 2 * flat @ book.T + book.square().sum(-1)
        return d.argmin(-1).reshape(vectors.shape[:-1])

    # -- interface -----------------------------------------------------------------------------
    def encode(self, x: Any) -> TokenizerOutput:
        """Codes (B, N) (or (N,) for one signal) of signals or band stacks (see module doc)."""
        self.check_fitted()
        stacks, kind, single = self._stacks(x, "x")
        cfg = self.config
        stacks = stacks / self.scale.to(stacks)[:, None]
        recon = torch.zeros_like(stacks[:, 0])
        codes = []
        for k, (vq, patch) in enumerate(zip(self.quantizers, cfg.patch_lengths)):
            idx = self._nearest(vq, to_patches(stacks[:, k] - recon, patch))
            recon = recon + from_patches(vq.codebook.to(recon)[idx], cfg.n_chans)
            codes.append(idx)
        out = torch.cat(codes, dim=1).long()
        out = out[0] if single else out
        return TokenizerOutput(
            codes=like_input(out, x),
            info={"input": kind, "stage_tokens": cfg.stage_tokens},
        )

    def decode_stages(self, codes: Tensor) -> Tensor:
        """The reconstructed cumulative levels (B, L, C, T) of codes (B, N), in input units."""
        cfg = self.config
        if codes.ndim != 2 or codes.shape[1] != sum(cfg.stage_tokens):
            raise ValueError(
                f"codes: expected (B, {sum(cfg.stage_tokens)}) band_rvq codes, got "
                f"{tuple(codes.shape)}"
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= cfg.codebook_size):
            raise ValueError(f"codes: values outside [0, {cfg.codebook_size})")
        levels = []
        recon = None
        for vq, part in zip(self.quantizers, self.stage_slices()):
            stage = from_patches(vq.codebook[codes[:, part].to(vq.codebook.device)], cfg.n_chans)
            recon = stage if recon is None else recon + stage
            levels.append(recon)
        return torch.stack(levels, dim=1) * self.scale[:, None]

    def decode(self, codes: Any) -> Any:
        """Levels (B, L, C, T) from codes (B, N); the full level (B, C, T) for signal inputs."""
        kind = "bands"
        if isinstance(codes, TokenizerOutput):
            kind = codes.info.get("input", "bands")
            codes = codes.codes
        reference = codes
        t = to_tensor(codes).long()
        single = t.ndim == 1
        levels = self.decode_stages(t[None] if single else t)
        out = levels[:, -1] if kind == "signal" else levels
        out = out[0] if single else out
        return like_input(out, reference)

    def load_state_tensors(self, state: dict[str, Tensor]) -> None:
        """Restore the codebooks and the scale (the quantizers' persistent state only)."""
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise CheckpointError(
                f"tokenizer 'band_rvq': state tensors do not match: {err}"
            ) from None


def reconstruction_errors(tokenizer: BandRVQTokenizer, stacks: Iterable[Any]) -> list[float]:
    """Mean squared error of each decoded level against the true one, over ``stacks``."""
    total, n = None, 0
    for item in stacks:
        x = to_tensor(item).float()
        x = x[None] if x.ndim == 3 else x
        decoded = tokenizer.decode_stages(tokenizer.encode(x).codes)
        err = (decoded - x).square().mean(dim=(0, 2, 3)) * x.shape[0]
        total = err if total is None else total + err
        n += x.shape[0]
    if total is None:
        raise ValueError("reconstruction_errors: no band stack given")
    return (total / n).tolist()
