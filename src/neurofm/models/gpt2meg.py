"""GPT2MEG and GPT2MEG_Trf: autoregressive transformers over quantized channel-wise codes.

After the MEG model zoo's GPT-2 forecasters (brain-gen, "GPT2MEG"): every (channel, time) cell
holds one code (e.g. mu-law, 256 levels); its input embedding is the sum of the code, channel-id,
subject and optional per-time condition embeddings. **Channels are independent sequences over
time that share all weights**: a batch (B, C, T) runs as B*C sequences of length T, and the
output is reshaped back to logits (B, C, T, V), where time t predicts the code at t+1. Channels
interact only through the shared weights and the channel-id embedding.

- ``GPT2MEG`` wraps Hugging Face ``transformers.GPT2Model`` (random init from a ``GPT2Config``,
  nothing downloaded) through ``inputs_embeds``, with GPT-2's learned position table and the HF
  cache for incremental decoding.
- ``GPT2MEG_Trf`` is the same model on neurofm's own pre-norm blocks (RoPE, RMSNorm, a chosen
  MLP) with a ``causal`` flag, accepting codes or precomputed embeddings (B, C, T, D).

Deviations from the reference code:

- GPT-2's own token table is removed (tokens are embedded by ``ChannelTokenEmbedding``), so
  every parameter is used;
- the condition is an integer label per time step (B, T) or several streams
  (B, n_cond_tokens, T), aligned with the input codes;
- argument names follow neurofm (``d_model``, ``n_layers``, ``n_heads``, ``n_chans``);
- two options, off by default, read the codes as ordered amplitudes ``v_k = 2 k / (V - 1) - 1``:
  ``value_embedding`` adds a learned linear map of the input code's ``v`` to its embedding, and
  ``ordinal_head`` makes the output a two-component mixture of the free softmax and a
  discretised Gaussian over the code values, ``softmax_k(-(v_k - mu)^2 / (2 sigma^2))``, whose
  mean is the input code's value plus a change linear in the final hidden state
  (``mu = v(x_t) + a(h)``; ``a(h)`` alone for precomputed embeddings), and whose ``log sigma``
  and mixing weight are linear in it: the head starts out close to a last-value forecast with
  probability mass shared between neighbouring codes, the free component keeps heavy tails, and
  the logits returned are the mixture's log-probabilities;
- ``ar_order = p > 0`` (with ``ordinal_head``) adds a linear autoregressive skip path to the
  Gaussian's mean, as in hybrid linear + neural forecasters (AR-Net):
  ``mu = v(x_t) + sum_{k=0}^{p-1} a_k v(x_{t-k}) + a(h)``, a causal filter over the same
  channel's last ``p`` code values with ``p`` weights shared by all channels, initialised to
  zero (the head starts as without it). Before the first time step the history is the first
  input code repeated (edge padding), so the filter never reads a later step. With a cache the
  model also keeps each sequence's last ``p - 1`` codes: ``past`` is then an :class:`ARPast`
  holding the attention cache and those codes, which callers pass back unchanged. The filter
  needs codes: for precomputed embeddings the mean is ``a(h)`` as before.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from neurofm.layers import ChannelTokenEmbedding, KVCache, TransformerBlock, make_norm
from neurofm.layers.ordinal import (
    ARPast,
    OrdinalLogits,
    code_history,
    join_past,
    split_past,
)
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


def channel_codes_spec(cfg: object) -> ModelSpec:
    """The spec of a GPT2MEG-family model with config ``cfg``: codes (B, C, T) in, logits out,
    causal with a cache (unless ``causal`` is False), taking the context its tables exist for."""
    causal = getattr(cfg, "causal", True)
    context = ["channel_ids"]
    context += ["subject"] if cfg.n_subjects else []
    context += ["condition"] if cfg.n_conditions else []
    context += ["global_embedding"] if getattr(cfg, "d_global", 0) else []
    return ModelSpec(
        inputs="channel_codes",
        outputs="logits",
        causal=causal,
        cache=causal,
        context=tuple(context),
        sampling="autoregressive" if causal else "none",
        max_seq_len=cfg.max_seq_len,
    )


def _validate(cfg: object) -> None:
    """Checks shared by both configs (raise ValueError naming the field)."""
    for name in (
        "vocab_size",
        "n_chans",
        "d_model",
        "n_layers",
        "n_heads",
        "max_seq_len",
        "n_cond_tokens",
    ):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(cfg, name)}")
    for name in ("n_subjects", "n_conditions"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0 (0 disables it), got {getattr(cfg, name)}")
    if cfg.d_model % cfg.n_heads:
        raise ValueError(f"n_heads={cfg.n_heads} must divide d_model={cfg.d_model}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.ar_order < 0:
        raise ValueError(f"ar_order must be >= 0 (0 disables it), got {cfg.ar_order}")
    if cfg.ar_order and not cfg.ordinal_head:
        raise ValueError(f"ar_order={cfg.ar_order} needs ordinal_head=True (it shifts its mean)")


_PRESETS = {
    "tiny": {
        "vocab_size": 64,
        "n_chans": 8,
        "n_subjects": 2,
        "n_conditions": 4,
        "d_model": 32,
        "n_layers": 2,
        "n_heads": 2,
        "max_seq_len": 1024,
    },
    "small": {
        "vocab_size": 256,
        "n_chans": 306,
        "n_subjects": 64,
        "d_model": 256,
        "n_layers": 4,
        "n_heads": 4,
        "max_seq_len": 1024,
    },
    "base": {
        "vocab_size": 256,
        "n_chans": 306,
        "n_subjects": 64,
        "d_model": 768,
        "n_layers": 12,
        "n_heads": 12,
        "max_seq_len": 2048,
    },
}


@dataclass
class GPT2MEGConfig:
    """Configuration of :class:`GPT2MEG`."""

    vocab_size: int = 256  # quantizer levels V
    n_chans: int = 306  # size of the channel-id vocabulary
    n_subjects: int = 0  # number of subject ids (0: no subject embedding)
    n_conditions: int = 0  # condition labels per stream (0: no conditioning)
    n_cond_tokens: int = 1  # condition streams, condition shape (B, n_cond_tokens, T)
    d_model: int = 256  # embedding / residual width
    n_layers: int = 4  # GPT-2 blocks
    n_heads: int = 4  # attention heads (must divide d_model)
    dropout: float = 0.0  # GPT-2 residual, embedding and attention dropout
    max_seq_len: int = 1024  # GPT-2 position table size: longest time axis
    value_embedding: bool = False  # add a linear map of each code's amplitude to its embedding
    ordinal_head: bool = False  # add a discretised Gaussian over the code values to the logits
    ar_order: int = 0  # linear filter over the last ar_order code values in the Gaussian's mean

    PRESETS: ClassVar[dict[str, dict]] = _PRESETS

    def __post_init__(self) -> None:
        _validate(self)


@dataclass
class GPT2MEGTrfConfig:
    """Configuration of :class:`GPT2MEG_Trf`."""

    vocab_size: int = 256  # quantizer levels V
    n_chans: int = 306  # size of the channel-id vocabulary
    n_subjects: int = 0  # number of subject ids (0: no subject embedding)
    n_conditions: int = 0  # condition labels per stream (0: no conditioning)
    n_cond_tokens: int = 1  # condition streams, condition shape (B, n_cond_tokens, T)
    d_model: int = 256  # embedding / residual width
    n_layers: int = 4  # transformer blocks
    n_heads: int = 4  # attention heads (must divide d_model; head size even for RoPE)
    dropout: float = 0.0  # dropout in attention, MLP and embeddings
    max_seq_len: int = 1024  # longest time axis (context + generated)
    value_embedding: bool = False  # add a linear map of each code's amplitude to its embedding
    ordinal_head: bool = False  # add a discretised Gaussian over the code values to the logits
    ar_order: int = 0  # linear filter over the last ar_order code values in the Gaussian's mean
    causal: bool = True  # causal attention over time (False: bidirectional encoder, no cache)
    activation: Literal["gelu", "squared_relu", "swiglu"] = "gelu"  # MLP non-linearity
    norm: Literal["rms", "layer"] = "rms"  # normalisation before each branch
    rope_base: float = 10000.0  # RoPE wavelength base

    PRESETS: ClassVar[dict[str, dict]] = _PRESETS

    def __post_init__(self) -> None:
        _validate(self)
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"head size d_model/n_heads={self.d_model // self.n_heads} must be even (RoPE)"
            )


def _embedding(cfg: GPT2MEGConfig | GPT2MEGTrfConfig) -> ChannelTokenEmbedding:
    return ChannelTokenEmbedding(
        cfg.vocab_size,
        cfg.d_model,
        n_chans=cfg.n_chans,
        n_subjects=cfg.n_subjects,
        n_conditions=cfg.n_conditions,
        n_cond_tokens=cfg.n_cond_tokens,
        dropout=cfg.dropout,
        value_embedding=cfg.value_embedding,
    )


def _logits(
    model: GPT2MEG | GPT2MEG_Trf, h: Tensor, x: Tensor, history: Tensor | None = None
) -> Tensor:
    """Free logits (B, C, T, V) of the final hidden states ``h`` (B*C, T, D) of inputs ``x``,
    or with the ordinal head the mixture's log-probabilities (anchored on the input codes, and
    with the AR filter on them and the preceding codes ``history`` (B, C, p - 1), when ``x``
    holds codes)."""
    b, c, t = x.shape[:3]
    logits = model.head(h).view(b, c, t, -1)
    if model.ordinal is None:
        return logits
    anchor = None
    if not x.dtype.is_floating_point:
        anchor = model.ordinal.anchor(x if history is None else torch.cat((history, x), dim=-1))
    return model.ordinal(logits, h.view(b, c, t, -1), anchor)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


@MODELS.register("gpt2meg", config=GPT2MEGConfig, spec=channel_codes_spec)
class GPT2MEG(nn.Module):
    """Hugging Face GPT-2 over channel-wise codes (B, C, T) -> logits (B, C, T, V).

    Parameters
    ----------
    config : GPT2MEGConfig
    """

    def __init__(self, config: GPT2MEGConfig) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2Model

        self.config = config
        self.max_seq_len = config.max_seq_len
        self.embedding = _embedding(config)
        self.embedding.apply(_init_weights)
        hf_config = GPT2Config(
            vocab_size=config.vocab_size,
            n_positions=config.max_seq_len,
            n_embd=config.d_model,
            n_layer=config.n_layers,
            n_head=config.n_heads,
            resid_pdrop=config.dropout,
            embd_pdrop=config.dropout,
            attn_pdrop=config.dropout,
            bos_token_id=None,
            eos_token_id=None,
        )
        self.gpt2 = GPT2Model(hf_config)
        self.gpt2.wte = None  # tokens come in through inputs_embeds
        # transformers >= 5 names the cache argument "cache", earlier versions "past_key_values"
        params = inspect.signature(GPT2Model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        _init_weights(self.head)
        self.ordinal = (
            OrdinalLogits(config.d_model, config.vocab_size, ar_order=config.ar_order)
            if config.ordinal_head
            else None
        )
        if self.ordinal is not None:
            self.ordinal.reset_parameters()

    def forward(
        self,
        x: Tensor,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        channel_ids: Tensor | None = None,
        past: object | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Next-code logits for every channel and time step.

        Parameters
        ----------
        x : LongTensor, shape (B, C, T)
            Codes; with ``past``, the time steps following the cached ones.
        subject : LongTensor (B,), optional
        condition : LongTensor (B, T) or (B, n_cond_tokens, T), optional
            Per-time labels aligned with ``x``.
        channel_ids : LongTensor (B, C) or (C,), optional
            Default ``0 .. C-1``.
        past : transformers Cache or ARPast, optional
            The cache returned by an earlier call with ``use_cache=True`` (same B and C).
        use_cache : bool
            Return the cache in ``past``.

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V), ``past``.
        """
        if x.dim() != 3:
            raise ValueError(f"GPT2MEG: codes must be (B, C, T), got {tuple(x.shape)}")
        b, c, t = x.shape
        layers = split_past(type(self).__name__, self.config.ar_order, past)
        history = code_history(type(self).__name__, self.config.ar_order, x, past)
        past = layers
        offset = 0 if past is None else past.get_seq_length()
        if offset + t > self.max_seq_len:
            raise ValueError(
                f"GPT2MEG: {offset + t} time steps exceed max_seq_len={self.max_seq_len}"
            )
        h = self.embedding(x, channel_ids=channel_ids, subject=subject, condition=condition)
        out = self.gpt2(
            inputs_embeds=h.reshape(b * c, t, -1), use_cache=use_cache, **{self._cache_arg: past}
        )
        logits = _logits(self, out.last_hidden_state, x, history)
        if not use_cache:
            return ModelOutput(logits=logits)
        return ModelOutput(logits=logits, past=join_past(getattr(out, self._cache_arg), x, history))


@MODELS.register("gpt2meg_trf", config=GPT2MEGTrfConfig, spec=channel_codes_spec)
class GPT2MEG_Trf(nn.Module):  # noqa: N801 (the family's published name)
    """GPT2MEG on neurofm's pre-norm RoPE blocks; codes (B, C, T) or embeddings (B, C, T, D).

    Parameters
    ----------
    config : GPT2MEGTrfConfig
    """

    def __init__(self, config: GPT2MEGTrfConfig) -> None:
        super().__init__()
        self.config = config
        self.max_seq_len = config.max_seq_len
        self.embedding = _embedding(config)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                config.d_model,
                config.n_heads,
                activation=config.activation,
                norm=config.norm,
                dropout=config.dropout,
                rotary=True,
                rope_base=config.rope_base,
            )
            for _ in range(config.n_layers)
        )
        self.norm = make_norm(config.norm, config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.ordinal = (
            OrdinalLogits(config.d_model, config.vocab_size, ar_order=config.ar_order)
            if config.ordinal_head
            else None
        )
        self.apply(_init_weights)
        if self.ordinal is not None:
            self.ordinal.reset_parameters()

    def forward(
        self,
        x: Tensor,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        channel_ids: Tensor | None = None,
        past: list[KVCache] | ARPast | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Logits for every channel and time step (next-code logits when ``causal``).

        Parameters
        ----------
        x : Tensor
            Codes (B, C, T) int64, or token embeddings (B, C, T, d_model) float (channel, subject
            and condition embeddings are still added).
        subject, condition, channel_ids : optional
            As in :class:`GPT2MEG`.
        past : list of KVCache or ARPast, optional
            Per-block caches from an earlier call with ``use_cache=True``, updated in place
            (with the code history in an :class:`ARPast` when ``ar_order > 0``).
        use_cache : bool
            Return the caches in ``past`` (causal models only).

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V), ``past``.
        """
        if (past is not None or use_cache) and not self.config.causal:
            raise ValueError(
                "GPT2MEG_Trf: a cache needs causal=True (bidirectional attention "
                "cannot decode incrementally)"
            )
        if x.dim() not in (3, 4):
            raise ValueError(
                f"GPT2MEG_Trf: expected codes (B, C, T) or embeddings (B, C, T, D), "
                f"got {tuple(x.shape)}"
            )
        b, c, t = x.shape[:3]
        layers = split_past(type(self).__name__, self.config.ar_order, past)
        history = code_history(type(self).__name__, self.config.ar_order, x, past)
        past = layers
        if past is None and use_cache:
            past = [KVCache(self.max_seq_len) for _ in self.blocks]
        offset = 0 if past is None else past[0].offset
        if offset + t > self.max_seq_len:
            raise ValueError(
                f"GPT2MEG_Trf: {offset + t} time steps exceed max_seq_len={self.max_seq_len}"
            )
        h = self.embedding(x, channel_ids=channel_ids, subject=subject, condition=condition)
        h = h.reshape(b * c, t, -1)  # channels as independent sequences
        for i, block in enumerate(self.blocks):
            h = block(h, causal=self.config.causal, cache=None if past is None else past[i])
        logits = _logits(self, self.norm(h), x, history)
        return ModelOutput(logits=logits, past=join_past(past, x, history) if use_cache else None)
