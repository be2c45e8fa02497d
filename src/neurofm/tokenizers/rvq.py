"""A residual vector-quantization tokenizer of multichannel signals (``rvq``).

The signal (B, C, T), divided by a per-channel scale fitted on train (the standard deviation),
is cut into patches of ``patch_len`` samples of all channels; each patch (C * patch_len values)
is projected to ``codebook_dim`` and quantized by ``n_quantizers`` residual codebooks
(:class:`~neurofm.layers.rvq.ResidualQuantizer`, built on ``vector_quantize_pytorch``:
k-means initialisation, EMA codebooks, dead-code replacement, commitment and codebook-usage
losses). ``fit`` trains the projections by Adam on reconstruction + those losses over
``fit_epochs`` passes of the train windows while the codebooks follow their EMA. Codes are
(B, L, N) with ``N = T / patch_len``; ``decode`` returns the reconstructed signal in input units.

The same quantizer is the MEG-to-text model's (``meg_text``) over its encoder's features.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from neurofm import checks
from neurofm.layers.rvq import ResidualQuantizer
from neurofm.registry import TOKENIZERS
from neurofm.tokenizers.base import Tokenizer, like_input, signal_batch, to_tensor
from neurofm.types import TokenizerOutput


@dataclass
class RVQConfig:
    """Configuration of :class:`RVQTokenizer`."""

    n_chans: int = 208  # channels C
    patch_len: int = 8  # samples per token
    n_quantizers: int = 8  # residual codebooks L
    codebook_size: int = 8192  # codes per codebook
    codebook_dim: int = 256  # size of a code vector
    commitment_weight: float = 0.25  # weight of the commitment loss
    entropy_weight: float = 0.1  # weight of the codebook-usage (diversity) loss
    dead_code_threshold: float = 2.0  # EMA usage under which a code is re-drawn (0: never)
    decay: float = 0.99  # EMA decay of the codebooks
    fit_epochs: int = 10  # passes over the train windows
    fit_batch_size: int = 64  # windows per update
    lr: float = 1e-3  # Adam learning rate of the projections
    seed: int = 0  # seed of the fitting (initialisation, batch order)

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "n_chans": 4,
            "patch_len": 4,
            "n_quantizers": 2,
            "codebook_size": 16,
            "codebook_dim": 8,
            "fit_epochs": 2,
            "fit_batch_size": 4,
        },
        "small": {"n_quantizers": 4, "codebook_size": 1024, "codebook_dim": 64},
        "base": {},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "n_chans", "patch_len", "n_quantizers", "codebook_size")
        checks.positive(self, "codebook_dim", "fit_epochs", "fit_batch_size", "lr")
        checks.non_negative(self, "commitment_weight", "entropy_weight", "dead_code_threshold")
        checks.fraction(self, "decay")


@TOKENIZERS.register("rvq", config=RVQConfig)
class RVQTokenizer(Tokenizer):
    """Residual VQ over patches of all channels: (B, C, T) -> codes (B, L, T / patch_len)."""

    codes_layout = "B L T"
    requires_fit = True

    def __init__(self, config: RVQConfig) -> None:
        super().__init__(config)
        torch.manual_seed(config.seed)
        self.quantizer = ResidualQuantizer(
            config.n_chans * config.patch_len,
            n_quantizers=config.n_quantizers,
            codebook_size=config.codebook_size,
            codebook_dim=config.codebook_dim,
            commitment_weight=config.commitment_weight,
            entropy_weight=config.entropy_weight,
            dead_code_threshold=config.dead_code_threshold,
            decay=config.decay,
        )
        self.register_buffer("scale", torch.ones(config.n_chans))

    @property
    def vocab_size(self) -> int:
        return self.config.codebook_size

    def codes_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        n = input_shape[-1] // self.config.patch_len
        return (*input_shape[:-2], self.config.n_quantizers, n)

    def _patches(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """(B, C, T) in input units -> scaled patches (B, N, C * patch_len)."""
        cfg = self.config
        b, c, t = x.shape
        self.channel_check(c, cfg.n_chans)
        if t % cfg.patch_len:
            raise ValueError(
                f"{name}: {t} samples is not a multiple of patch_len={cfg.patch_len} "
                "(nothing is padded)"
            )
        x = x.float() / self.scale.to(x.device)[:, None]
        return x.reshape(b, c, t // cfg.patch_len, cfg.patch_len).permute(0, 2, 1, 3).flatten(2)

    def _fit(self, signals: Iterable[np.ndarray]) -> None:
        cfg = self.config
        windows = torch.stack([to_tensor(s, torch.float32) for s in signals])  # (M, C, T)
        if windows.shape[0] == 0:
            raise ValueError("fit data: no window to fit the rvq tokenizer on")
        self.channel_check(windows.shape[1], cfg.n_chans)
        self.scale = windows.transpose(0, 1).reshape(cfg.n_chans, -1).std(dim=1).clamp_min(1e-30)
        patches = self._patches(windows, "fit data")
        generator = torch.Generator().manual_seed(cfg.seed)
        optimizer = torch.optim.Adam(self.quantizer.parameters(), lr=cfg.lr)
        self.train()
        for _ in range(cfg.fit_epochs):
            order = torch.randperm(patches.shape[0], generator=generator)
            for start in range(0, len(order), cfg.fit_batch_size):
                batch = patches[order[start : start + cfg.fit_batch_size]]
                quantized, _, losses = self.quantizer(batch)
                loss = F.mse_loss(quantized, batch) + losses["rvq"]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.eval()

    @torch.no_grad()
    def encode(self, x: Any) -> TokenizerOutput:
        """Codes (B, L, N) (or (L, N) for one (C, T) signal) of signals in input units."""
        self.check_fitted()
        signal, single = signal_batch(x)
        was_training = self.training
        self.eval()  # no codebook update while encoding
        _, codes, _ = self.quantizer(self._patches(signal, "x"))
        self.train(was_training)
        codes = codes[0] if single else codes
        return TokenizerOutput(codes=like_input(codes.long(), x))

    @torch.no_grad()
    def decode(self, codes: Any) -> Any:
        """The reconstructed signal (B, C, T) (or (C, T)) of codes (B, L, N), in input units."""
        if isinstance(codes, TokenizerOutput):
            codes = codes.codes
        reference = codes
        ids = to_tensor(codes, torch.int64)
        single = ids.ndim == 2
        ids = ids[None] if single else ids
        patches = self.quantizer.decode_codes(ids.to(self.scale.device))  # (B, N, C * patch)
        cfg = self.config
        b, n, _ = patches.shape
        signal = patches.reshape(b, n, cfg.n_chans, cfg.patch_len).permute(0, 2, 1, 3)
        signal = signal.reshape(b, cfg.n_chans, n * cfg.patch_len) * self.scale[:, None]
        return like_input(signal[0] if single else signal, reference)
