"""Fast streamed generation for :class:`~neurofm.models.wavenet.WavenetFullChannel`.

The cached ``forward(x, past=, use_cache=True)`` of the model is exact but pays, at every
step, for the general code path: checks of the codes and channel ids, a concatenation of every
block's state with the new input, and the module calls of each projection. For one step of one
code per channel, that bookkeeping costs far more than the arithmetic. :class:`WavenetStream`
holds what a step needs, prepared once from the model's weights:

- one ring buffer per block (``left_pad`` past inputs, written in place: no growing or
  concatenated states), read at the few slots the dilated taps need;
- the taps of each convolution as matrices, applied by ``addmm`` (the current input and each
  stored one), with the gate's sigmoid folded into one ``tanh`` over both halves:
  ``sigmoid(b) = (1 + tanh(b / 2)) / 2``, so the gate half of the convolution is halved and
  the factor 1/2 moves into the residual and skip projections; the activation of a block is
  then ``a * (1 + tanh(b / 2))``, one ``addcmul``;
- the skip projections of all blocks as one matrix applied once per step to the stacked
  activations; the per-channel code table pre-scaled by ``1 / sqrt(C)`` and read with
  ``embedding_bag``; the channel readout gathered once for the channels being generated.

The result equals the cached forward up to float rounding (the tests compare both).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers import channel_ids_for


class WavenetStream:
    """Streams a :class:`~neurofm.models.wavenet.WavenetFullChannel` one time step at a time.

    Parameters
    ----------
    model : WavenetFullChannel
        The model in eval mode (dropout is not applied).
    prompt : LongTensor, shape (B, C, T0)
        Codes to start from (validated by the model's forward, which encodes them).
    channel_ids : LongTensor (B, C) or (C,), optional
        As in the model's forward.

    Attributes
    ----------
    logits : Tensor, shape (B, C, V)
        The float32 logits of the next code after the codes fed so far.
    """

    @torch.no_grad()
    def __init__(self, model: nn.Module, prompt: Tensor, channel_ids: Tensor | None = None) -> None:
        out = model(prompt, channel_ids=channel_ids, past=None, use_cache=True)
        self.logits = out.logits[..., -1, :].float()
        ids = channel_ids_for(prompt, channel_ids, model.config.n_chans, "wavenet")
        b, c, t0 = prompt.shape
        vocab = model.config.vocab_size
        self.t = t0  # time index of the next input
        self.offsets = ids * vocab  # (B, C): row of code 0 of each channel in the table
        self.table = model.input.table.weight / math.sqrt(c)
        d, n_blocks = model.config.d_model, len(model.blocks)
        self.layers: list[tuple] = []
        skip_w, skip_b = [], 0
        for block, state in zip(model.blocks, out.past):
            conv = block.conv
            weight = conv.weight.clone()  # (2D, D, K)
            bias = conv.bias.clone()
            weight[d:] *= 0.5  # sigmoid(b) = (1 + tanh(b / 2)) / 2
            bias[d:] *= 0.5
            k, dil, pad = conv.kernel_size[0], conv.dilation[0], conv.left_pad
            taps = [weight[:, :, j].t().contiguous() for j in range(k)]  # (D, 2D) each
            # ring slot (time % pad) holds the input at time - pad; state[..., j] is the input
            # at t0 - pad + j, which sits in slot (t0 + j) % pad
            ring = torch.roll(state.permute(2, 0, 1), shifts=t0 % pad, dims=0).contiguous()
            # tap j reads the input at time - (k - 1 - j) * dil
            lags = [(k - 1 - j) * dil for j in range(k - 1)]
            mix = None
            if block.mix is not None:
                mix = (0.5 * block.mix.weight[:, :, 0].t()).contiguous(), block.mix.bias.clone()
            self.layers.append((ring, pad, lags, taps[:-1], taps[-1], bias, mix))
            skip_w.append(0.5 * block.skip.weight[:, :, 0])  # (S, D)
            skip_b = skip_b + block.skip.bias
        self.skip_w = torch.cat(skip_w, dim=1).t().contiguous()  # (n_blocks * D, S)
        self.skip_b = skip_b.clone()
        self.acts = prompt.new_zeros((b, n_blocks * d), dtype=self.table.dtype)
        self.d = d
        self.post_w = model.post.weight[:, :, 0].t().contiguous()
        self.post_b = model.post.bias.clone()
        head_w = model.head.weight[ids]  # (B, C, S, V)
        s = head_w.shape[2]
        self.head_w = head_w.permute(0, 2, 1, 3).reshape(b, s, c * vocab).contiguous()
        self.head_b = model.head.bias[ids].reshape(b, 1, c * vocab).contiguous()
        self.shape = (b, c, vocab)

    @torch.no_grad()
    def step(self, codes: Tensor) -> Tensor:
        """Feed the codes (B, C) of the next time step; returns (and keeps in :attr:`logits`)
        the float32 logits (B, C, V) of the step after it.

        The codes must lie in ``[0, vocab_size)`` (as the sampler draws them).
        """
        h = F.embedding_bag(self.offsets + codes, self.table, mode="sum")  # (B, D)
        t, d = self.t, self.d
        for i, (ring, pad, lags, old_taps, tap, bias, mix) in enumerate(self.layers):
            y = torch.addmm(bias, h, tap)  # (B, 2D)
            for lag, w in zip(lags, old_taps):
                y = y.addmm_(ring[(t - lag) % pad], w)
            ring[t % pad].copy_(h)
            y = y.tanh_()
            filt, gate = y[:, :d], y[:, d:]
            act = torch.addcmul(filt, filt, gate, out=self.acts[:, i * d : (i + 1) * d])
            if mix is not None:
                h = torch.addmm(mix[1], act, mix[0]).add_(h)
        skip = torch.addmm(self.skip_b, self.acts, self.skip_w).relu_()
        hidden = torch.addmm(self.post_b, skip, self.post_w).relu_()
        logits = torch.baddbmm(self.head_b, hidden[:, None, :], self.head_w)
        self.t = t + 1
        self.logits = logits.view(self.shape).float()
        return self.logits
