"""GPT2MEGMix: channel mixing, one token per time step holding every channel.

After the MEG model zoo's channel-mixing GPT2MEG variant (brain-gen, ``GPT2MEGMix``; Csaky et al.
2024, "Foundational GPT model for MEG"). Where GPT2MEG runs channels as independent sequences,
here all channels of a time step form one token, so attention over time sees every channel of
every earlier step. The data layout differs, so it is a class of its own; it shares the family's
config, embeddings, blocks (dense or MoE MLP), context injection, output head and init:

- input token of step t: ``sum_c w_c (g[c] * e(x[c, t]) + b[c])``, where ``e`` is the code
  embedding (with ``value_embedding``, plus the amplitude map), ``g[c]`` a learned per-channel
  gain that binds a code to its channel (initialised at random so that channels start
  distinguishable), ``b[c]`` a per-channel embedding that tells which channels are present, and
  ``w_c = 1 / sqrt(n_kept)`` for kept channels, 0 for dropped ones; plus the context (subject,
  condition, global vector) at the input or before every block (``context_injection``);
- a RoPE transformer over the T step tokens (causal with a KV cache, or bidirectional);
- all channels of t+1 are predicted from the state at t, independently given that state:
  ``logits[c, t] = head(norm(h_t) * g_out[c] + b_out[c])``, through the ordinal head when
  ``ordinal_head`` (anchored on channel c's own input code, with ``ar_order`` on its history).
  There is no order among the channels of one step.

Channel dropout: in training, each input channel of each window is hidden with probability
``channel_dropout`` (at least one is always kept); the targets keep every channel, so the model
learns to predict channels it does not see. In evaluation every channel is used.

Deviations from the reference code:

- the step token is a gain-bound sum over channels (any number and set of channels, given by
  ``channel_ids``) rather than a projection of a fixed channel layout;
- RoPE over time, RMSNorm, neurofm argument names (``d_model``, ``n_layers``, ``n_heads``);
- ``block="channel_time"`` does not apply: a step token has no channel axis to attend over.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers import KVCache, check_ids, make_norm
from neurofm.layers.ordinal import ARPast, seen_of
from neurofm.models.gpt2meg import parts
from neurofm.models.gpt2meg.config import GPT2MEGConfig, channel_codes_spec
from neurofm.registry import MODELS
from neurofm.types import ModelOutput


@MODELS.register("gpt2meg_mix", config=GPT2MEGConfig, spec=channel_codes_spec)
class GPT2MEGMix(parts.LinearPathInit, nn.Module):
    """All channels of a time step in one token, over time; (B, C, T) -> (B, C, T, V).

    Parameters
    ----------
    config : GPT2MEGConfig
        ``block`` must be ``"time"``.
    """

    def __init__(self, config: GPT2MEGConfig) -> None:
        super().__init__()
        if config.block != "time":
            raise ValueError(
                f"GPT2MEGMix: block={config.block!r} needs a channel axis, and a step token holds "
                "all channels; allowed: 'time'"
            )
        self.config = config
        d = config.d_model
        self.embedding = parts.code_embedding(config, channels=False, context=False)
        self.channel_gain = nn.Embedding(config.n_chans, d)
        self.channel_bias = nn.Embedding(config.n_chans, d)
        self.context = parts.context_embedding(config, type(self).__name__)
        self.inject = parts.injections(config)
        self.blocks = nn.ModuleList(parts.block(config) for _ in range(config.n_layers))
        self.norm = make_norm(config.norm, d)
        self.out_gain = nn.Embedding(config.n_chans, d)
        self.out_bias = nn.Embedding(config.n_chans, d)
        self.head = nn.Linear(d, config.vocab_size, bias=False)
        self.ordinal = parts.ordinal_head(config)
        parts.init_weights(self, config.n_layers)
        nn.init.normal_(self.channel_gain.weight, std=1.0)
        nn.init.normal_(self.out_gain.weight, std=1.0)

    def channel_weights(self, b: int, c: int, device: torch.device) -> Tensor:
        """Weights (B, C) of the channels in the step token: ``1/sqrt(n_kept)`` or 0 (dropped).

        Channels are dropped only in training, each with probability ``channel_dropout``, and the
        channel drawn with the largest uniform number is always kept.
        """
        p = self.config.channel_dropout
        if self.training and p > 0:
            draw = torch.rand(b, c, device=device)
            keep = (draw >= p) | (draw == draw.max(dim=1, keepdim=True).values)
        else:
            keep = torch.ones(b, c, dtype=torch.bool, device=device)
        keep = keep.float()
        return keep / keep.sum(dim=1, keepdim=True).sqrt()

    def forward(
        self,
        x: Tensor,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        global_embedding: Tensor | None = None,
        channel_ids: Tensor | None = None,
        past: list[KVCache] | ARPast | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Logits for every channel at t+1 from all channels at times <= t (when ``causal``).

        Parameters
        ----------
        x : Tensor
            Codes (B, C, T) int64, or token embeddings (B, C, T, d_model) float; with ``past``,
            the time steps following the cached ones.
        subject : LongTensor (B,), optional
        condition : LongTensor (B, T) or (B, n_cond_tokens, T), optional
        global_embedding : Tensor (B, d_global), optional
        channel_ids : LongTensor (B, C) or (C,), optional
            Ids in ``[0, n_chans)``; default ``0 .. C-1``.
        past : list of KVCache or ARPast, optional
            Per-block caches (batch B) from an earlier call, updated in place (with the code
            history in an :class:`ARPast` when ``ar_order > 0``).
        use_cache : bool
            Return the caches in ``past``.

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V), ``past``; with ``mlp="moe"`` the routing losses.
        """
        cfg = self.config
        who = type(self).__name__
        b, c, t, layers, history = parts.start(who, cfg, x, past, use_cache)
        if channel_ids is None:
            channel_ids = torch.arange(c, device=x.device)
        check_ids(who, "channel_ids", channel_ids, cfg.n_chans)
        if channel_ids.shape[-1] != c:
            raise ValueError(
                f"{who}: channel_ids has {channel_ids.shape[-1]} entries for {c} channels"
            )
        ids = channel_ids.expand(b, c)
        e = self.embedding(x)  # (B, C, T, D)
        e = e * self.channel_gain(ids)[:, :, None] + self.channel_bias(ids)[:, :, None]
        weights = self.channel_weights(b, c, x.device).to(e.dtype)
        h = torch.einsum("bc,bctd->btd", weights, e)  # one token per time step
        context = self.context(
            b, t, subject=subject, condition=condition, global_embedding=global_embedding
        )
        if context is not None and self.inject is None:
            h = h + context
        for i, block in enumerate(self.blocks):
            if context is not None and self.inject is not None:
                h = h + self.inject[i](F.silu(context))
            h = block(h, causal=cfg.causal, cache=None if layers is None else layers[i])
        z = self.norm(h)[:, None]  # (B, 1, T, D)
        z = z * self.out_gain(ids)[:, :, None] + self.out_bias(ids)[:, :, None]  # (B, C, T, D)
        seen = seen_of(past)
        logits = parts.code_logits(self.head, self.ordinal, z, x, history, channel_ids, seen)
        return parts.output(cfg, logits, self.blocks, x, history, layers, use_cache, seen)
