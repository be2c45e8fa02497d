"""FlowMatchingTransformer: a bidirectional transformer denoiser for discrete flow matching.

The network of discrete flow matching (Gat et al. 2024, arXiv:2407.15595; Campbell et al. 2024):
given a time ``t`` in [0, 1] and a noisy sequence ``x_t`` over a vocabulary, it predicts the
posterior ``p(x_1 | x_t)`` of the clean tokens at every position. Parts:

- bidirectional attention (no causal mask) with squared-ReLU MLPs and RMSNorm (pre-norm);
- the timestep as a token: a sinusoidal embedding of ``t`` (``time_embed_dim`` features) mapped
  to ``d_model`` and concatenated at the start of the sequence, removed before the head;
- soft-distribution inputs (B, T, V) embedded by a linear map (one-hot rows give the usual
  embedding lookup); integer ids (B, T) are accepted as one-hot;
- no positional encoding by default, as described; RoPE as an option (``rope: true``), which the
  EEG configs use: without positions the network cannot tell two positions holding the same
  token apart.

Training (mixture path, convex scheduler, generalized KL) is the ``discrete_flow`` objective and
sampling (discrete Euler solver, prompt positions kept fixed) is
:mod:`neurofm.generation.flow`, both built on the ``flow_matching`` library.

Deviations from the reference description:

- config names ``d_model``, ``n_layers``, ``n_heads`` (the reference's ``n_embd``, ``n_layer``,
  ``n_head`` are accepted as keywords too);
- ``forward`` returns a :class:`~neurofm.types.ModelOutput`, which unpacks as
  ``logits, loss = model(t, xt, targets=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.checks import divides, even_head_size, fraction, positive
from neurofm.layers import RMSNorm, TimestepEmbedding, TransformerBlock, init_gpt2
from neurofm.models._reference import reference_config
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class FlowMatchingConfig:
    """Configuration of :class:`FlowMatchingTransformer`."""

    vocab_size: int = 256  # number of token ids V
    d_model: int = 768  # embedding / residual width (reference: n_embd)
    n_layers: int = 12  # transformer blocks (reference: n_layer)
    n_heads: int = 12  # attention heads, must divide d_model (reference: n_head)
    dropout: float = 0.0  # dropout in attention, MLP and on the embeddings
    max_seq_len: int = 2048  # longest token sequence (the time token not counted)
    time_embed_dim: int = 256  # sinusoidal features of the timestep (even)
    rope: bool = False  # rotary position embeddings (the reference has none)
    rope_base: float = 10000.0  # RoPE wavelength base

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {
            "vocab_size": 64,
            "d_model": 32,
            "n_layers": 2,
            "n_heads": 2,
            "max_seq_len": 1024,
            "time_embed_dim": 32,
            "rope": True,
        },
        "small": {"vocab_size": 256, "d_model": 256, "n_layers": 4, "n_heads": 4, "rope": True},
        "base": {"vocab_size": 256, "d_model": 768, "n_layers": 12, "n_heads": 12},
    }

    def __post_init__(self) -> None:
        positive(self, "vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len")
        positive(self, "time_embed_dim")
        divides(self, "n_heads", "d_model")
        even_head_size(self)
        fraction(self, "dropout")
        if self.time_embed_dim % 2:
            raise ValueError(f"time_embed_dim must be even, got {self.time_embed_dim}")


@MODELS.register(
    "flow_matching",
    config=FlowMatchingConfig,
    spec=lambda cfg: ModelSpec(
        inputs="token_sequence",
        outputs="logits",
        sampling="flow",
        max_seq_len=cfg.max_seq_len,
    ),
)
class FlowMatchingTransformer(nn.Module):
    """Bidirectional transformer: (t (B,), x_t (B, T, V) or ids (B, T)) -> logits (B, T, V).

    Parameters
    ----------
    config : FlowMatchingConfig, optional
        The configuration; or give the reference's keywords instead (``vocab_size`` required).
    loss_func : callable, optional
        ``loss_func(logits (N, V), targets (N,) ids or (N, V) probabilities)``; default
        ``F.cross_entropy``.
    """

    def __init__(
        self,
        config: FlowMatchingConfig | None = None,
        *,
        vocab_size: int | None = None,
        n_embd: int | None = None,
        n_layer: int | None = None,
        n_head: int | None = None,
        dropout: float | None = None,
        max_seq_len: int | None = None,
        time_embed_dim: int | None = None,
        loss_func: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        config = reference_config(
            FlowMatchingConfig,
            config,
            "FlowMatchingTransformer",
            vocab_size=vocab_size,
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            dropout=dropout,
            max_seq_len=max_seq_len,
            time_embed_dim=time_embed_dim,
        )
        self.config = config
        self.loss_func = loss_func or F.cross_entropy
        self.embedding = nn.Linear(config.vocab_size, config.d_model, bias=False)
        self.time_embedding = TimestepEmbedding(config.time_embed_dim, config.d_model, scale=1000.0)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                config.d_model,
                config.n_heads,
                activation="squared_relu",
                norm="rms",
                dropout=config.dropout,
                rotary=config.rope,
                rope_base=config.rope_base,
            )
            for _ in range(config.n_layers)
        )
        self.norm = RMSNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_gpt2(self, config.n_layers)

    def _distributions(self, xt: Tensor) -> Tensor:
        vocab = self.config.vocab_size
        if not xt.is_floating_point():
            if xt.dim() != 2:
                raise ValueError(
                    f"FlowMatchingTransformer: integer x_t must be ids (B, T), got {tuple(xt.shape)}"
                )
            lo, hi = int(xt.min()), int(xt.max())
            if lo < 0 or hi >= vocab:
                raise ValueError(
                    f"FlowMatchingTransformer: ids span [{lo}, {hi}], vocab_size={vocab}"
                )
            return F.one_hot(xt, vocab).to(self.embedding.weight.dtype)
        if xt.dim() != 3 or xt.shape[-1] != vocab:
            raise ValueError(
                f"FlowMatchingTransformer: x_t must be distributions (B, T, {vocab}), "
                f"got {tuple(xt.shape)}"
            )
        return xt.to(self.embedding.weight.dtype)

    def forward(self, t: Tensor, xt: Tensor, targets: Tensor | None = None) -> ModelOutput:
        """Posterior logits of the clean tokens at every position.

        Parameters
        ----------
        t : Tensor, shape (B,) or scalar
            Flow time in [0, 1] (0: source noise, 1: data).
        xt : Tensor, shape (B, T, V) float or (B, T) int
            The noisy sequence as distributions over the vocabulary (one-hot or soft), or ids.
        targets : Tensor, shape (B, T) int or (B, T, V) float, optional
            Clean tokens (ids or target distributions); gives ``loss = loss_func(logits, targets)``.

        Returns
        -------
        ModelOutput
            ``logits`` (B, T, V) and ``loss``; unpacks as ``logits, loss``.
        """
        x = self._distributions(xt)
        b, n = x.shape[:2]
        if n > self.config.max_seq_len:
            raise ValueError(
                f"FlowMatchingTransformer: {n} positions exceed max_seq_len={self.config.max_seq_len}"
            )
        t = torch.as_tensor(t, device=x.device).float().reshape(-1).expand(b)
        time_token = self.time_embedding(t)[:, None, :]  # (B, 1, D)
        h = torch.cat([time_token.to(x.dtype), self.embedding(x)], dim=1)  # (B, 1 + T, D)
        h = self.dropout(h)
        for block in self.blocks:
            h = block(h, causal=False)
        logits = self.head(self.norm(h[:, 1:]))  # the time token removed: (B, T, V)
        loss = None
        if targets is not None:
            # ids (B, T) -> (B T,); target distributions (B, T, V) -> (B T, V) in float32
            flat = (
                targets.float().flatten(0, 1) if targets.is_floating_point() else targets.flatten()
            )
            loss = self.loss_func(logits.float().flatten(0, 1), flat)
        return ModelOutput(logits=logits, loss=loss)

    @torch.no_grad()
    def sample(self, t: Tensor, xt: Tensor, temperature: float = 1.0) -> Tensor:
        """Tempered posterior logits ``logits / temperature`` (B, T, V) for one refinement step.

        The sampler (:func:`neurofm.generation.flow.sample_flow`) turns them into probabilities.
        """
        if not temperature > 0:
            raise ValueError(
                f"FlowMatchingTransformer.sample: temperature must be > 0, got {temperature}"
            )
        return self.forward(t, xt).logits / temperature
