"""EEGScaleAutoregressiveModel: next-band prediction, the prototype of VAR-style EEG generation.

After Visual Autoregressive Modeling (Tian et al. 2024, arXiv:2404.02905), with "next scale"
read as "next frequency band": from the cumulative band ``delta + ... + band k`` predict
``delta + ... + band k + 1``. The prototype maps one cumulative band (C, T) to the next: a linear
projection of the C channels of every time step to ``d_model``, learnable positional embeddings
over the ``n_times`` steps, a (bidirectional) transformer encoder over time, a linear
projection back to C channels.

The model takes a whole stack (B, L, C, T) at once and maps every stage independently (one
training step covers all stages): position ``k`` of the input holds the band the objective feeds
for stage ``k`` (the ``next_band`` objective feeds zeros at ``k = 0``, then level ``k - 1``) and
the output at ``k`` is the predicted level ``k``.

Deviations from the prototype's description:

- an optional learnable stage embedding (``stage_embedding``), added to every time step, tells
  the shared network which band comes next;
- ``residual: true`` (default) predicts the added band: output = input + network(input), with
  the output projection zero-initialised so that a new model starts as "no new band";
  ``residual: false`` is the prototype's direct mapping;
- the encoder layers are neurofm's pre-norm :class:`~neurofm.layers.TransformerBlock` (GELU MLP,
  LayerNorm, no RoPE) rather than PyTorch's post-norm ``TransformerEncoderLayer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from neurofm import checks
from neurofm.layers.blocks import TransformerBlock
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class NextBandConfig:
    """Configuration of :class:`EEGScaleAutoregressiveModel` (``base`` is the prototype's size)."""

    n_chans: int = 64  # channels C (the prototype's `channels`)
    n_times: int = 500  # longest window T in samples (the prototype's `time_steps`)
    n_stages: int = 5  # stages L: the frequency bands of the stack
    d_model: int = 256  # embedding size (`--d-model`)
    n_heads: int = 8  # attention heads (`--nhead`)
    n_layers: int = 4  # transformer layers (`--num-layers`)
    dropout: float = 0.1  # dropout in attention and MLP (`--dropout`)
    stage_embedding: bool = True  # add a learnable embedding of the stage index
    residual: bool = True  # predict the added band (output = input + network(input))

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "n_chans": 4,
            "n_times": 64,
            "n_stages": 3,
            "d_model": 32,
            "n_heads": 2,
            "n_layers": 1,
            "dropout": 0.0,
        },
        "small": {"d_model": 128, "n_heads": 4, "n_layers": 2},
        "base": {"d_model": 256, "n_heads": 8, "n_layers": 4, "dropout": 0.1},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "n_chans", "n_times", "n_stages", "d_model", "n_heads", "n_layers")
        checks.divides(self, "n_heads", "d_model")
        checks.fraction(self, "dropout")


def check_band_stack(who: str, x: Tensor, n_chans: int, n_stages: int, n_times: int) -> None:
    """Raise a ValueError naming ``who`` unless ``x`` is a float (B, n_stages, n_chans, T <= n_times)."""
    if x.ndim != 4 or x.shape[1] != n_stages or x.shape[2] != n_chans:
        raise ValueError(
            f"{who}: expected bands of shape (B, {n_stages}, {n_chans}, T), got {tuple(x.shape)}"
        )
    if x.shape[-1] > n_times:
        raise ValueError(f"{who}: {x.shape[-1]} samples exceed n_times={n_times}")
    if not x.is_floating_point():
        raise ValueError(f"{who}: expected float bands, got {x.dtype}")


@MODELS.register(
    "next_band",
    config=NextBandConfig,
    spec=ModelSpec(inputs="band_stack", outputs="prediction", sampling="next_band"),
)
class EEGScaleAutoregressiveModel(nn.Module):
    """Next-band prototype: each stage's band (C, T) -> the next cumulative band (C, T)."""

    def __init__(self, config: NextBandConfig) -> None:
        super().__init__()
        self.config = config
        self.input = nn.Linear(config.n_chans, config.d_model)
        self.position = nn.Parameter(torch.zeros(config.n_times, config.d_model))
        self.stage = (
            nn.Parameter(torch.zeros(config.n_stages, config.d_model))
            if config.stage_embedding
            else None
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(
                config.d_model,
                config.n_heads,
                norm="layer",
                dropout=config.dropout,
                bias=True,
                rotary=False,
            )
            for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.output = nn.Linear(config.d_model, config.n_chans)
        # unit scale (as nn.Embedding): visible next to the projection of small band signals
        nn.init.normal_(self.position)
        if self.stage is not None:
            nn.init.normal_(self.stage)
        if config.residual:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, x: Tensor) -> ModelOutput:
        """Predict the next cumulative band of every stage of the stack.

        Parameters
        ----------
        x : Tensor, shape (B, L, C, T)
            Float bands, ``L == n_stages``, ``C == n_chans``, ``T <= n_times``.

        Returns
        -------
        ModelOutput
            ``prediction`` (B, L, C, T): at stage ``k`` the band predicted from ``x[:, k]``.
        """
        cfg = self.config
        check_band_stack("next_band", x, cfg.n_chans, cfg.n_stages, cfg.n_times)
        b, n_stages, n_chans, n_times = x.shape
        tokens = x.reshape(b * n_stages, n_chans, n_times).transpose(1, 2)  # (B*L, T, C)
        h = self.input(tokens) + self.position[:n_times]  # (B*L, T, D)
        if self.stage is not None:
            h = h + self.stage.repeat(b, 1).unsqueeze(1)  # stage k of each window
        for block in self.blocks:
            h = block(h, causal=False)
        out = self.output(self.norm(h))  # (B*L, T, C)
        out = out.transpose(1, 2).reshape(b, n_stages, n_chans, n_times)
        return ModelOutput(prediction=x + out if cfg.residual else out)
