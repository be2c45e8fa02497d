"""EEGBandVAR: the full VAR variant of next-band generation, over discrete multi-scale tokens.

After Visual Autoregressive Modeling (Tian et al. 2024, arXiv:2404.02905). The ``band_rvq``
tokenizer turns a window's cumulative bands into a flat code sequence, stage after stage
(``stage_tokens[k]`` codes at stage ``k``, each stage quantizing what the coarser stages left).
The transformer predicts all tokens of stage ``k`` at once from stages ``< k``:

- the input at the positions of stage ``k`` is the running sum of the embeddings of the codes of
  stages ``< k``, each repeated to the finest token grid and averaged down to stage ``k``'s grid
  (VAR's accumulated feature map, interpolated to the next scale); stage 0 gets a learned start
  map plus the condition;
- plus learnable position and stage embeddings;
- block-causal attention: a position of stage ``k`` attends to the positions of stages ``<= k``
  (whose inputs only hold codes of stages ``< k``), so the logits of stage ``k`` depend on the
  codes of stages ``< k`` only;
- AdaLN blocks (:class:`~neurofm.layers.AdaLNBlock`) conditioned on a class embedding (e.g. the
  EEGBCI rest / left / right events), with a null class for unlabelled windows; during training
  labels are replaced by the null class with probability ``class_dropout`` (classifier-free
  guidance in :func:`~neurofm.generation.band_tokens.generate_band_tokens`).

``forward(codes (B, N), label=None)`` returns ``logits`` (B, N, V): at each position of stage
``k`` the distribution of that stage-``k`` code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from neurofm import checks
from neurofm.layers.adaln import AdaLNBlock, AdaLNOutput
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class BandVARConfig:
    """Configuration of :class:`EEGBandVAR` (``stage_tokens`` as the ``band_rvq`` tokenizer's)."""

    stage_tokens: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32])  # per stage
    vocab_size: int = 512  # codes per stage (the tokenizer's codebook_size)
    d_model: int = 256
    n_heads: int = 8
    n_layers: int = 4
    dropout: float = 0.1
    n_classes: int = 0  # class labels for AdaLN conditioning; 0: unconditional
    class_dropout: float = 0.1  # training: labels replaced by the null class (guidance)
    gate_init: float = 1e-3  # initial AdaLN gates of the residual branches (VAR's --alng)

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "stage_tokens": [4, 4, 8],
            "vocab_size": 16,
            "d_model": 32,
            "n_heads": 2,
            "n_layers": 1,
            "dropout": 0.0,
            "n_classes": 3,
        },
        "small": {"d_model": 128, "n_heads": 4, "n_layers": 4},
        "base": {"d_model": 256, "n_heads": 8, "n_layers": 8},
    }

    def __post_init__(self) -> None:
        checks.positive(self, "vocab_size", "d_model", "n_heads", "n_layers")
        checks.non_negative(self, "n_classes", note="0: unconditional")
        checks.divides(self, "n_heads", "d_model")
        checks.fraction(self, "dropout", "class_dropout")
        if not self.stage_tokens or any(n < 1 for n in self.stage_tokens):
            raise ValueError(f"stage_tokens: give >= 1 token per stage, got {self.stage_tokens}")
        finest = max(self.stage_tokens)
        if any(finest % n for n in self.stage_tokens):
            raise ValueError(
                f"stage_tokens: each must divide the largest ({finest}), got {self.stage_tokens}"
            )

    @property
    def n_stages(self) -> int:
        """Number of stages L."""
        return len(self.stage_tokens)

    @property
    def n_tokens(self) -> int:
        """Length N of a window's code sequence."""
        return sum(self.stage_tokens)


def stage_index(stage_tokens: list[int]) -> Tensor:
    """The stage of every position of the flat sequence, (N,) int64."""
    return torch.cat([torch.full((n,), k, dtype=torch.long) for k, n in enumerate(stage_tokens)])


def block_causal_mask(stage_tokens: list[int]) -> Tensor:
    """(N, N) boolean, True where a query may attend: keys of its own stage or earlier ones."""
    stage = stage_index(stage_tokens)
    return stage[None, :] <= stage[:, None]


@MODELS.register(
    "next_band_var",
    config=BandVARConfig,
    spec=ModelSpec(inputs="band_codes", outputs="logits", sampling="band_tokens"),
)
class EEGBandVAR(nn.Module):
    """Block-causal AdaLN transformer over band-stage codes (the VAR variant of next band)."""

    def __init__(self, config: BandVARConfig) -> None:
        super().__init__()
        self.config = config
        d, n = config.d_model, config.n_tokens
        self.token = nn.Embedding(config.n_stages * config.vocab_size, d)  # a table per stage
        self.start = nn.Parameter(torch.randn(config.stage_tokens[0], d) * 0.02)
        self.position = nn.Parameter(torch.randn(n, d) * 0.02)
        self.stage = nn.Parameter(torch.randn(config.n_stages, d) * 0.02)
        self.classes = nn.Embedding(config.n_classes + 1, d)  # last row: the null class
        self.blocks = nn.ModuleList(
            AdaLNBlock(d, config.n_heads, d, dropout=config.dropout, gate_init=config.gate_init)
            for _ in range(config.n_layers)
        )
        self.norm = AdaLNOutput(d, d)
        self.head = nn.Linear(d, config.vocab_size)
        nn.init.normal_(self.token.weight, std=0.02)
        nn.init.normal_(self.classes.weight, std=0.02)
        self.register_buffer("stages", stage_index(config.stage_tokens), persistent=False)
        self.register_buffer("mask", block_causal_mask(config.stage_tokens), persistent=False)

    def condition(self, label: Tensor | None, batch: int, device: torch.device) -> Tensor:
        """Class embeddings (B, d_model); None (or -1 entries) mean the null class."""
        null = self.config.n_classes
        if label is None:
            label = torch.full((batch,), null, dtype=torch.long, device=device)
        else:
            if label.shape != (batch,):
                raise ValueError(
                    f"next_band_var: label must be ({batch},), got {tuple(label.shape)}"
                )
            label = label.long()
            if ((label < -1) | (label >= null)).any():
                raise ValueError(
                    f"next_band_var: labels must lie in [0, n_classes={null}) (or -1: none), got "
                    f"{label.min().item()}..{label.max().item()}"
                )
            label = torch.where(label < 0, torch.full_like(label, null), label)
            if self.training and self.config.class_dropout > 0:
                drop = torch.rand(batch, device=device) < self.config.class_dropout
                label = torch.where(drop, torch.full_like(label, null), label)
        return self.classes(label)

    def stage_inputs(self, codes: Tensor, cond: Tensor) -> Tensor:
        """The input of every position (B, N, d_model): from the codes of earlier stages only."""
        cfg = self.config
        b = codes.shape[0]
        offsets = self.stages * cfg.vocab_size
        emb = self.token(codes + offsets)  # (B, N, D)
        finest = max(cfg.stage_tokens)
        running = emb.new_zeros(b, finest, cfg.d_model)
        parts, start = [], 0
        for k, n in enumerate(cfg.stage_tokens):
            if k == 0:
                parts.append(self.start.expand(b, -1, -1) + cond[:, None])
            else:
                parts.append(running.reshape(b, n, finest // n, cfg.d_model).mean(dim=2))
            stage = emb[:, start : start + n]
            running = running + stage.repeat_interleave(finest // n, dim=1)
            start += n
        return torch.cat(parts, dim=1)

    def forward(self, codes: Tensor, label: Tensor | None = None) -> ModelOutput:
        """Logits of every stage's codes given the earlier stages.

        Parameters
        ----------
        codes : Tensor, shape (B, N)
            int64 codes, stage after stage (``N == sum(stage_tokens)``), in ``[0, vocab_size)``;
            the last stage's codes are targets only (no input reads them).
        label : Tensor, shape (B,), optional
            Class of each window (``-1`` or None: the null class).

        Returns
        -------
        ModelOutput
            ``logits`` (B, N, vocab_size).
        """
        cfg = self.config
        if codes.ndim != 2 or codes.shape[1] != cfg.n_tokens:
            raise ValueError(
                f"next_band_var: expected codes (B, {cfg.n_tokens}) (stage_tokens "
                f"{cfg.stage_tokens}), got {tuple(codes.shape)}"
            )
        if codes.is_floating_point():
            raise ValueError(f"next_band_var: codes must be integers, got {codes.dtype}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= cfg.vocab_size):
            raise ValueError(f"next_band_var: codes outside [0, vocab_size={cfg.vocab_size})")
        cond = self.condition(label, codes.shape[0], codes.device)
        h = self.stage_inputs(codes, cond) + self.position + self.stage[self.stages]
        for block in self.blocks:
            h = block(h, cond, attn_mask=self.mask)
        return ModelOutput(logits=self.head(self.norm(h, cond)))
