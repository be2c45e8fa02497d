"""GPTCausal: a decoder-only transformer over a flat token sequence.

Follows the GPT recipe (Radford et al. 2019) with modern parts, as in nanoGPT-style "speedrun"
models:

- rotary position embeddings (Su et al. 2021, arXiv:2104.09864) instead of a learned position table;
- squared-ReLU MLP (So et al. 2021, Primer, arXiv:2109.08668);
- RMSNorm (computed in float32) before each branch and before the head, no biases.

Deviations from the reference description:

- config names follow neurofm (``d_model``, ``n_layers``, ``n_heads``); the reference's keywords
  (``GPTCausal(vocab_size=..., n_embd=..., n_layer=..., n_head=..., dropout=...,
  max_seq_len=...)``) build the same model, and ``loss_func`` replaces the cross-entropy;
- ``forward`` returns a ``ModelOutput`` (``logits``, ``loss``, ``past``), which unpacks as the
  reference's tuple: ``logits, loss = model(tokens, targets=targets)``;
- the ``base`` preset has the reference's default sizes (768 wide, 12 layers, 12 heads, 2048
  positions) over neurofm's 256 mu-law codes;
- incremental decoding with a per-layer ``KVCache`` (``past`` / ``use_cache``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.checks import divides, even_head_size, fraction, positive
from neurofm.generation import SamplingConfig, generate
from neurofm.layers import KVCache, RMSNorm, TransformerBlock, init_gpt2
from neurofm.models._reference import reference_config
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class GPTCausalConfig:
    """Configuration of :class:`GPTCausal`."""

    vocab_size: int = 256  # number of token ids V
    d_model: int = 256  # embedding / residual width
    n_layers: int = 4  # transformer blocks
    n_heads: int = 4  # attention heads (must divide d_model)
    dropout: float = 0.0  # dropout in attention, MLP and on the embeddings
    max_seq_len: int = 2048  # longest sequence (context + generated) the model accepts
    rope_base: float = 10000.0  # RoPE wavelength base

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"vocab_size": 64, "d_model": 32, "n_layers": 2, "n_heads": 2, "max_seq_len": 1024},
        "small": {"vocab_size": 256, "d_model": 256, "n_layers": 4, "n_heads": 4},
        "base": {"vocab_size": 256, "d_model": 768, "n_layers": 12, "n_heads": 12},
    }

    def __post_init__(self) -> None:
        positive(self, "vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len")
        divides(self, "n_heads", "d_model")
        even_head_size(self)
        fraction(self, "dropout")


@MODELS.register(
    "gpt_causal",
    config=GPTCausalConfig,
    spec=lambda cfg: ModelSpec(
        inputs="token_sequence",
        outputs="logits",
        causal=True,
        cache=True,
        sampling="autoregressive",
        max_seq_len=cfg.max_seq_len,
    ),
)
class GPTCausal(nn.Module):
    """Causal GPT with RoPE, squared-ReLU MLPs and RMSNorm over tokens (B, T).

    Parameters
    ----------
    config : GPTCausalConfig, optional
        The configuration; or give the reference's keywords instead (``vocab_size`` required).
    loss_func : callable, optional
        ``loss_func(logits (N, V), targets (N,))`` giving ``loss``; default ``F.cross_entropy``.
    """

    def __init__(
        self,
        config: GPTCausalConfig | None = None,
        *,
        vocab_size: int | None = None,
        n_embd: int | None = None,
        n_layer: int | None = None,
        n_head: int | None = None,
        dropout: float | None = None,
        max_seq_len: int | None = None,
        loss_func: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        config = reference_config(
            GPTCausalConfig,
            config,
            "GPTCausal",
            vocab_size=vocab_size,
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            dropout=dropout,
            max_seq_len=max_seq_len,
        )
        self.config = config
        self.loss_func = loss_func or F.cross_entropy
        self.max_seq_len = config.max_seq_len
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                config.d_model,
                config.n_heads,
                activation="squared_relu",
                norm="rms",
                dropout=config.dropout,
                rotary=True,
                rope_base=config.rope_base,
            )
            for _ in range(config.n_layers)
        )
        self.norm = RMSNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_gpt2(self, config.n_layers)

    def forward(
        self,
        tokens: Tensor,
        targets: Tensor | None = None,
        *,
        past: list[KVCache] | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Next-token logits for every position.

        Parameters
        ----------
        tokens : LongTensor, shape (B, T)
            Token ids in ``[0, vocab_size)``; with ``past``, the tokens following the cached ones.
        targets : LongTensor, shape (B, T), optional
            Ids to predict at each position; gives ``loss`` (mean cross-entropy, nats).
        past : list of KVCache, optional
            Caches returned by an earlier call (``use_cache=True``), updated in place.
        use_cache : bool
            Return the caches in ``past`` for the next decoding step.

        Returns
        -------
        ModelOutput
            ``logits`` (B, T, V) where position t predicts token t+1; ``loss``; ``past``.
            Unpacks as ``logits, loss``.
        """
        if tokens.dim() != 2 or tokens.dtype.is_floating_point:
            raise ValueError(
                f"GPTCausal: tokens must be integer ids (B, T), got {tuple(tokens.shape)} "
                f"{tokens.dtype}"
            )
        if past is None and use_cache:
            past = [KVCache(self.max_seq_len) for _ in self.blocks]
        offset = 0 if past is None else past[0].offset
        if offset + tokens.shape[1] > self.max_seq_len:
            raise ValueError(
                f"GPTCausal: {offset + tokens.shape[1]} positions exceed "
                f"max_seq_len={self.max_seq_len}"
            )
        h = self.dropout(self.embedding(tokens))
        for i, block in enumerate(self.blocks):
            h = block(h, causal=True, cache=None if past is None else past[i])
        logits = self.head(self.norm(h))
        loss = None
        if targets is not None:
            loss = self.loss_func(logits.float().flatten(0, 1), targets.flatten())
        return ModelOutput(logits=logits, loss=loss, past=past if use_cache else None)

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample ``max_new_tokens`` after ``prompt`` (B, T0); returns (B, T0 + max_new_tokens).

        ``temperature=0`` decodes greedily. Uses the KV cache, through
        :func:`neurofm.generation.generate` (past ``max_seq_len`` the context slides).
        """
        sampling = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p)
        return generate(self, prompt, max_new_tokens, sampling, generator=generator)
