"""GPT2MEG: autoregressive transformers over quantized channel-wise codes (B, C, T).

After the MEG model zoo's GPT-2 forecasters (brain-gen; Csaky et al. 2024, "Foundational GPT
model for MEG"). Every (channel, time) cell holds one code (e.g. mu-law, 256 levels); its input
embedding is the sum of the code, channel-id and context (subject, per-time condition streams,
global vector) embeddings; the output is logits (B, C, T, V), where time t predicts the code at
t+1. One config, :class:`GPT2MEGConfig` (presets ``tiny``, ``small``, ``base``), and three
classes:

- :class:`GPT2MEG_Trf` (``gpt2meg_trf``; module :mod:`.model`): neurofm's pre-norm RoPE blocks,
  with the variants of the reference code as config values and their registered names as
  aliases: ``gpt2meg_moe`` (``mlp="moe"``), ``stgpt2meg`` (``block="channel_time"``),
  ``gpt2meg_cond`` (``context_injection="every_block"``);
- :class:`GPT2MEGMix` (``gpt2meg_mix``; :mod:`.mix`): all channels of a time step in one token
  (another data layout, so another class);
- :class:`GPT2MEG` (``gpt2meg``; :mod:`.hf`): Hugging Face ``GPT2Model`` as the backbone.

Deviations from the reference code, common to the family:

- argument names follow neurofm (``d_model``, ``n_layers``, ``n_heads``, ``n_chans``); the
  condition is an integer label per time step (B, T) or several streams (B, n_cond_tokens, T),
  aligned with the input codes;
- all three classes use one GPT-2 initialisation (:func:`~neurofm.layers.init_gpt2`: N(0, 0.02),
  residual output projections scaled by ``1 / sqrt(2 n_layers)``);
- three options, off by default and available on every class, read the codes as ordered
  amplitudes ``v_k = 2 k / (V - 1) - 1``: ``value_embedding`` adds a learned linear map of the
  input code's ``v`` to its embedding, and ``ordinal_head`` makes the output a two-component
  mixture of the free softmax and a discretised Gaussian over the code values,
  ``softmax_k(-(v_k - mu)^2 / (2 sigma^2))``, whose mean is the input code's value plus a change
  linear in the final hidden state (``mu = v(x_t) + a(h)``; ``a(h)`` alone for precomputed
  embeddings), and whose ``log sigma`` and mixing weight are linear in it: the head starts out
  close to a last-value forecast with probability mass shared between neighbouring codes, the
  free component keeps heavy tails, and the logits returned are the mixture's log-probabilities;
- ``ar_order = p > 0`` (with ``ordinal_head``) adds a linear autoregressive skip path to the
  Gaussian's mean, as in hybrid linear + neural forecasters (AR-Net):
  ``mu = v(x_t) + sum_{k=0}^{p-1} a_k v(x_{t-k}) + a(h)``, a causal filter over the same
  channel's last ``p`` code values with ``p`` weights shared by all channels, initialised to
  zero (the head starts as without it). Before the first time step the history is the first
  input code repeated (edge padding), so the filter never reads a later step. With a cache the
  model also keeps each sequence's last ``p - 1`` codes: ``past`` is then an
  :class:`~neurofm.layers.ordinal.ARPast` holding the attention cache and those codes, which
  callers pass back unchanged. The filter needs codes: for precomputed embeddings the mean is
  ``a(h)`` as before;
- ``var_order = p > 0`` adds a vector autoregression to the mean: ``sum_k sum_d W_k[c, d]
  v_d(x_{t-k})`` over every channel d of the input (weights picked by the channel ids), so the
  channels inform each other's forecasts directly (they otherwise share only weights); with
  ``linear_init: train_ridge`` it is fitted in closed form by ridge regression on train codes
  before training (``init_from_data``; the spec's ``data_init``), the Gaussian's width set to the
  fit's residual, and the transformer learns the rest (a hybrid linear + neural forecaster);
- ``amplitude: mulaw`` puts the Gaussian on the unit-scale mu-law amplitudes instead of the
  code values: each code gets the Gaussian's density at its centre times its bin's width,
  normalised over the codes (the midpoint rule for the bin masses ``Phi(b) - Phi(a)``, at the
  cost of the code-value head), so the linear filters act on (a scaled copy of) the signal,
  where EEG is close to linear, rather than on companded values.
"""

from neurofm.models.gpt2meg.config import GPT2MEGConfig, channel_codes_spec
from neurofm.models.gpt2meg.hf import GPT2MEG
from neurofm.models.gpt2meg.mix import GPT2MEGMix
from neurofm.models.gpt2meg.model import GPT2MEG_Trf

__all__ = ["GPT2MEG", "GPT2MEGConfig", "GPT2MEGMix", "GPT2MEG_Trf", "channel_codes_spec"]
