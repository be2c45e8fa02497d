"""GPT2MEG: the family on Hugging Face ``transformers.GPT2Model``, as in the reference code.

After the MEG model zoo's GPT-2 forecaster (brain-gen, ``GPT2MEG``; Csaky et al. 2024,
"Foundational GPT model for MEG"): channels are independent sequences over time that share all
weights, embedded as in :class:`~neurofm.models.gpt2meg.GPT2MEG_Trf` and run through GPT-2
(random init from a ``GPT2Config``, nothing downloaded) via ``inputs_embeds``, with GPT-2's
learned position table and the Hugging Face cache for incremental decoding.

It shares the family's config, embedding, output head (with the ordinal head and AR filter) and
initialisation; GPT-2's own blocks keep their LayerNorm, GELU, learned positions and
Hugging Face's GPT-2 init. Deviations from the reference code:

- GPT-2's token table is removed (tokens are embedded by ``ChannelTokenEmbedding``), so every
  parameter is used;
- the config options of neurofm's blocks do not apply and must keep their defaults (``causal``,
  ``activation``, ``norm``, ``rope_base``, ``mlp``, ``block``, ``context_injection``); inputs are
  codes only.
"""

from __future__ import annotations

import dataclasses
import inspect

from torch import Tensor, nn

from neurofm.layers import init_gpt2
from neurofm.layers.ordinal import code_history, join_past, seen_of, split_past
from neurofm.models.gpt2meg import parts
from neurofm.models.gpt2meg.config import GPT2MEGConfig, channel_codes_spec
from neurofm.registry import MODELS
from neurofm.types import ModelOutput

# options of neurofm's own blocks, which GPT-2's blocks do not have
_BLOCK_OPTIONS = (
    "causal",
    "activation",
    "norm",
    "rope_base",
    "mlp",
    "block",
    "context_injection",
    "attn_window",
    "n_kv_heads",
)


@MODELS.register("gpt2meg", config=GPT2MEGConfig, spec=channel_codes_spec)
class GPT2MEG(parts.LinearPathInit, nn.Module):
    """Hugging Face GPT-2 over channel-wise codes (B, C, T) -> logits (B, C, T, V).

    Parameters
    ----------
    config : GPT2MEGConfig
        The options of neurofm's blocks keep their defaults.
    """

    def __init__(self, config: GPT2MEGConfig) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2Model

        defaults = {f.name: f.default for f in dataclasses.fields(GPT2MEGConfig)}
        changed = [
            f"{n}={getattr(config, n)!r}"
            for n in _BLOCK_OPTIONS
            if getattr(config, n) != defaults[n]
        ]
        if changed:
            raise ValueError(
                f"GPT2MEG: {', '.join(changed)} not available on the Hugging Face GPT-2 backbone; "
                "use gpt2meg_trf"
            )
        self.config = config
        self.max_seq_len = config.max_seq_len
        self.embedding = parts.code_embedding(config)
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
        self.ordinal = parts.ordinal_head(config)
        for part in (self.embedding, self.head):  # GPT-2 initialises its own blocks
            init_gpt2(part, config.n_layers)
        if self.ordinal is not None:
            self.ordinal.reset_parameters()

    def forward(
        self,
        x: Tensor,
        *,
        subject: Tensor | None = None,
        condition: Tensor | None = None,
        global_embedding: Tensor | None = None,
        channel_ids: Tensor | None = None,
        past: object | None = None,
        use_cache: bool = False,
    ) -> ModelOutput:
        """Next-code logits for every channel and time step.

        Parameters
        ----------
        x : LongTensor, shape (B, C, T)
            Codes; with ``past``, the time steps following the cached ones.
        subject, condition, global_embedding, channel_ids : optional
            As in :class:`~neurofm.models.gpt2meg.GPT2MEG_Trf`.
        past : transformers Cache or ARPast, optional
            The cache returned by an earlier call with ``use_cache=True`` (same B and C).
        use_cache : bool
            Return the cache in ``past``.

        Returns
        -------
        ModelOutput
            ``logits`` (B, C, T, V), ``past``.
        """
        who = type(self).__name__
        if x.dim() != 3:
            raise ValueError(f"{who}: codes must be (B, C, T), got {tuple(x.shape)}")
        b, c, t = x.shape
        layers = split_past(who, parts.history_order(self.config), past)
        history = code_history(who, parts.history_order(self.config), x, past)
        offset = 0 if layers is None else layers.get_seq_length()
        if offset + t > self.max_seq_len:
            raise ValueError(
                f"{who}: {offset + t} time steps exceed max_seq_len={self.max_seq_len}"
            )
        h = self.embedding(
            x,
            channel_ids=channel_ids,
            subject=subject,
            condition=condition,
            global_embedding=global_embedding,
        )
        out = self.gpt2(
            inputs_embeds=h.reshape(b * c, t, -1), use_cache=use_cache, **{self._cache_arg: layers}
        )
        seen = seen_of(past)
        logits = parts.code_logits(
            self.head, self.ordinal, out.last_hidden_state, x, history, channel_ids, seen
        )
        if not use_cache:
            return ModelOutput(logits=logits)
        layers = getattr(out, self._cache_arg)
        return ModelOutput(logits=logits, past=join_past(layers, x, history, seen))
