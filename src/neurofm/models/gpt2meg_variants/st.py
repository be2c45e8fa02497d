"""STGPT2MEG: GPT2MEG built from spatiotemporal blocks.

After the MEG model zoo's spatiotemporal GPT2MEG variant (brain-gen, ``STGPT2MEG``; Csaky et al.
2024, "Foundational GPT model for MEG"), with factorised space-time attention as in TimeSformer
(Bertasius et al. 2021, arXiv:2102.05095). Every (channel, time) cell is a token (code, channel,
subject and condition embeddings summed); each block attends over the channels of the same time
step, then causally over time within each channel, then applies an MLP
(:class:`~neurofm.layers.spatiotemporal.SpatioTemporalBlock`). Unlike GPT2MEG, channels exchange
information at every layer, yet the output at time t depends only on inputs at times <= t.

Deviations from the reference code:

- no positional encoding across channels (channels are an unordered set identified by their
  channel-id embedding), RoPE over time, RMSNorm;
- incremental decoding over time with a KV cache (batch B*C) per block;
- neurofm argument names (``d_model``, ``n_layers``, ``n_heads``, ``n_chans``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from neurofm.layers import KVCache, make_norm
from neurofm.layers.spatiotemporal import SpatioTemporalBlock
from neurofm.models.gpt2meg import channel_codes_spec
from neurofm.models.gpt2meg_variants._common import (
    ChannelCodesConfig,
    init_weights,
    prepare,
    token_embedding,
)
from neurofm.registry import MODELS
from neurofm.types import ModelOutput


@dataclass
class STGPT2MEGConfig(ChannelCodesConfig):
    """Configuration of :class:`STGPT2MEG` (all fields as in every GPT2MEG variant)."""


@MODELS.register("stgpt2meg", config=STGPT2MEGConfig, spec=channel_codes_spec)
class STGPT2MEG(nn.Module):
    """Stacked channel-then-time attention blocks; codes (B, C, T) -> logits (B, C, T, V).

    Parameters
    ----------
    config : STGPT2MEGConfig
    """

    def __init__(self, config: STGPT2MEGConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = token_embedding(config)
        self.blocks = nn.ModuleList(
            SpatioTemporalBlock(
                config.d_model,
                config.n_heads,
                activation=config.activation,
                norm=config.norm,
                dropout=config.dropout,
                rope_base=config.rope_base,
            )
            for _ in range(config.n_layers)
        )
        self.norm = make_norm(config.norm, config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_weights(self, config.n_layers)

    def forward(
        self,
        x: Tensor,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        channel_ids: Tensor | None = None,
        past: list[KVCache] | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Next-code logits for every channel and time step.

        Parameters
        ----------
        x : Tensor
            Codes (B, C, T) int64, or token embeddings (B, C, T, d_model) float; with ``past``,
            the time steps following the cached ones (same channels).
        subject : LongTensor (B,), optional
        condition : LongTensor (B, T) or (B, n_cond_tokens, T), optional
        channel_ids : LongTensor (B, C) or (C,), optional
        past : list of KVCache, optional
            Per-block time-attention caches (batch B*C), updated in place.
        use_cache : bool
            Return the caches in ``past``.

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V), ``past``.
        """
        past = prepare("STGPT2MEG", self.config, x, past, use_cache)[3]
        h = self.embedding(x, channel_ids=channel_ids, subject=subject, condition=condition)
        for i, block in enumerate(self.blocks):
            h = block(h, cache=None if past is None else past[i])
        return ModelOutput(logits=self.head(self.norm(h)), past=past if use_cache else None)
