"""First convolutions folded into their inputs: the same outputs with far fewer operations.

The compact decoders run a 1-D convolution over every channel of a window, on inputs that
carry one number per sample (a float signal, or a code id): a 1x1 input projection or an
embedding lifts it to ``d`` features, and a ``d -> d`` convolution follows. Both are linear, so
the convolution can act on the one number directly:

- :func:`single_channel_conv`: a convolution with one input channel as one batched matrix
  product of its weights with the stacked, shifted copies of the signal (the generic kernel is
  slow for one input channel);
- :func:`pointwise_then_conv`: ``conv(pointwise(x))`` for a 1x1 ``pointwise`` convolution, as the
  one-channel convolution of ``x`` with the composed weights, plus the composed bias at the taps
  that fall inside the signal (the zero padding of ``conv`` acts after the bias of
  ``pointwise``);
- :func:`embedded_conv`: ``conv(code_table[codes] + channel_table[ids])`` as a sum, per output
  position, of rows of a table of per-tap projections (``embedding_bag``): one row per tap for
  the code under it, one for the channel embedding when that tap is inside the signal;
- :func:`channels_last_stack`: the convolutions that follow, run in the channels-last layout
  these folds produce;
- :func:`fresh_gelu`: GELU of an intermediate, in place when autograd is off (on CPU every fresh
  buffer costs the first touch of its pages).

They hold for training as well (gradients reach the original weights through the composed
ones). Supported: zero padding, no dilation, one group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _geometry(conv: nn.Conv1d, where: str) -> tuple[int, int, int]:
    """Kernel size, stride and padding of ``conv``; rejects what the folds do not cover."""
    if conv.dilation != (1,) or conv.groups != 1 or conv.padding_mode != "zeros":
        raise ValueError(
            f"{where}: the folded convolution needs dilation 1, one group and zero padding, "
            f"got dilation {conv.dilation}, groups {conv.groups}, padding {conv.padding_mode!r}"
        )
    if isinstance(conv.padding, str):
        raise ValueError(f"{where}: the folded convolution needs a numeric padding")
    return conv.kernel_size[0], conv.stride[0], conv.padding[0]


def _n_out(n_times: int, kernel: int, stride: int, padding: int, where: str) -> int:
    n = (n_times + 2 * padding - kernel) // stride + 1
    if n <= 0:
        raise ValueError(f"{where}: {n_times} samples are too few for a kernel of {kernel}")
    return n


def _taps(x: Tensor, kernel: int, stride: int, padding: int, n_out: int, dim: int = 1) -> Tensor:
    """(N, T) -> (N, kernel, n_out) (``dim=1``) or (N, n_out, kernel) (``dim=2``): the
    zero-padded input under each tap, per output."""
    padded = F.pad(x, (padding, padding))
    end = stride * (n_out - 1) + 1
    return torch.stack([padded[:, k : k + end : stride] for k in range(kernel)], dim=dim)


def inside(n_times: int, kernel: int, stride: int, padding: int, device: torch.device) -> Tensor:
    """(n_out, kernel) bool: whether tap ``k`` of output ``t`` reads a sample of the input (not
    the zero padding)."""
    n_out = (n_times + 2 * padding - kernel) // stride + 1
    pos = stride * torch.arange(n_out, device=device)[:, None] + torch.arange(kernel, device=device)
    pos = pos - padding
    return (pos >= 0) & (pos < n_times)


def single_channel_conv(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride: int, padding: int
) -> Tensor:
    """``F.conv1d(x[:, None], weight[:, None], bias, stride, padding)`` for ``x`` (N, T) and
    ``weight`` (D, K): one batched product, (N, D, n_out)."""
    kernel = weight.shape[1]
    n_out = _n_out(x.shape[-1], kernel, stride, padding, "single_channel_conv")
    taps = _taps(x, kernel, stride, padding, n_out)  # (N, K, n_out)
    y = torch.bmm(weight.expand(x.shape[0], -1, -1), taps)  # (N, D, n_out), no transposed copy
    if bias is not None:
        y += bias[:, None]  # in place: the product's output is not needed for its gradient
    return y


def fresh_gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """``F.gelu`` of an intermediate ``x`` that nothing else reads, in place (no new buffer)
    when autograd is off."""
    if torch.is_grad_enabled():
        return F.gelu(x, approximate=approximate)
    return torch.ops.aten.gelu_(x, approximate=approximate)


def channels_last_stack(h: Tensor, layers: nn.Sequential) -> Tensor:
    """Apply ``layers`` (``nn.Conv1d`` and element-wise modules) to ``h`` (N, D, T), running
    every convolution as a 2-D one over (N, D, 1, T) in channels-last layout.

    The same outputs as ``layers(h)``; the CPU convolution kernel is about twice as fast on
    this layout for the narrow (tens of channels) convolutions of the compact decoders, and a
    ``h`` stored (N, T, D) is read without a copy. Returns (N, D_out, T_out), stored
    (N, T_out, D_out).
    """
    x = h.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    for layer in layers:
        if isinstance(layer, nn.Conv1d):
            _geometry(layer, "channels_last_stack")
            x = F.conv2d(
                x,
                layer.weight.unsqueeze(2),
                layer.bias,
                stride=(1, layer.stride[0]),
                padding=(0, layer.padding[0]),
            )
        elif isinstance(layer, nn.GELU):
            x = fresh_gelu(x, layer.approximate)
        else:
            x = layer(x)
    return x.squeeze(2)


def pointwise_then_conv(x: Tensor, pointwise: nn.Conv1d, conv: nn.Conv1d) -> Tensor:
    """``conv(pointwise(x[:, None]))`` for ``x`` (N, T), a 1x1 ``pointwise`` with one input
    channel and a ``conv`` over its outputs: (N, D_out, n_out)."""
    where = "pointwise_then_conv"
    kernel, stride, padding = _geometry(conv, where)
    if pointwise.in_channels != 1 or pointwise.kernel_size != (1,) or pointwise.stride != (1,):
        raise ValueError(f"{where}: expected a 1x1 pointwise convolution of one input channel")
    n_out = _n_out(x.shape[-1], kernel, stride, padding, where)
    weight = torch.einsum("odk,d->ok", conv.weight, pointwise.weight[:, 0, 0])  # (D_out, K)
    taps = _taps(x, kernel, stride, padding, n_out, dim=2)  # (N, n_out, K)
    y = taps @ weight.T  # (N, n_out, D_out)
    bias = 0.0 if conv.bias is None else conv.bias
    if pointwise.bias is not None:  # it reaches an output only through the taps on the signal
        per_tap = torch.einsum("odk,d->ko", conv.weight, pointwise.bias)  # (K, D_out)
        mask = inside(x.shape[-1], kernel, stride, padding, x.device).to(per_tap.dtype)
        bias = bias + mask @ per_tap  # (n_out, D_out)
    y += bias
    return y.transpose(1, 2)  # (N, D_out, n_out), stored channels-last


def embedded_conv(
    codes: Tensor,
    code_table: Tensor,
    conv: nn.Conv1d,
    channel_table: Tensor | None = None,
    ids: Tensor | None = None,
) -> Tensor:
    """``conv((code_table[codes] + channel_table[ids][:, None]).transpose(1, 2))``.

    Parameters
    ----------
    codes : LongTensor, shape (N, T)
        Code ids in ``[0, V)`` (checked by the caller).
    code_table : Tensor, shape (V, D)
        The code embedding.
    conv : nn.Conv1d
        ``D -> D_out`` convolution over the embedded sequence.
    channel_table : Tensor (n_chans, D), optional
        A per-sequence embedding added at every sample; ``ids`` (N,) picks its row.

    Returns
    -------
    Tensor, shape (N, D_out, n_out), stored channels-last (N, n_out, D_out).
    """
    where = "embedded_conv"
    kernel, stride, padding = _geometry(conv, where)
    n_seq, n_times = codes.shape
    n_out = _n_out(n_times, kernel, stride, padding, where)
    vocab = code_table.shape[0]
    # per tap k: what each code adds to an output through tap k, then a zero row (padding)
    per_tap = torch.einsum("odk,vd->kvo", conv.weight, code_table)  # (K, V, D_out)
    table = torch.cat((per_tap, per_tap.new_zeros(kernel, 1, per_tap.shape[-1])), dim=1)
    padded = F.pad(codes, (padding, padding), value=vocab)  # the zero row of every tap
    end = stride * (n_out - 1) + 1
    rows = torch.stack([padded[:, k : k + end : stride] for k in range(kernel)], dim=2)
    rows += (vocab + 1) * torch.arange(kernel, device=codes.device)  # (N, n_out, K)
    y = F.embedding_bag(rows.view(-1, kernel), table.view(-1, table.shape[-1]), mode="sum")
    y = y.view(n_seq, n_out, -1)
    if conv.bias is not None:
        y += conv.bias
    if channel_table is not None:
        if ids is None or ids.shape != (n_seq,):
            raise ValueError(f"{where}: channel_table needs ids of shape ({n_seq},)")
        # the channel embedding reaches an output through the taps on the signal only
        per_channel = torch.einsum("odk,nd->nko", conv.weight, channel_table[ids])
        mask = inside(n_times, kernel, stride, padding, codes.device).to(y.dtype)
        y = y.baddbmm_(mask.expand(n_seq, -1, -1), per_channel)
    return y.transpose(1, 2)
