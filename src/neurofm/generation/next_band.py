"""Coarse-to-fine generation over frequency bands for models whose spec says
``sampling="next_band"``.

A next-band model maps a stack of current bands (B, L, C, T) to the predicted next cumulative
bands (B, L, C, T), where input stage ``k`` holds level ``k - 1`` (zeros at ``k = 0``; see the
``next_band`` objective) and output stage ``k`` predicts level ``k``. Generation feeds each
prediction back as the next stage's input, one stage at a time, so that stage ``k`` only ever
sees generated (or given) levels below it:

- from the lowest band of a window (``first_band`` given): level 0 is kept, levels ``1..L-1``
  are generated;
- unconditionally (``first_band=None``): level 0 is generated from zeros, as in the prototype.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neurofm.registry import model_spec
from neurofm.types import ModelSpec


@torch.no_grad()
def generate_bands(
    model: nn.Module,
    first_band: Tensor | None = None,
    *,
    n_stages: int | None = None,
    n_chans: int | None = None,
    n_times: int | None = None,
    batch_size: int = 1,
    spec: ModelSpec | None = None,
) -> Tensor:
    """Generate every cumulative band, stage by stage.

    Parameters
    ----------
    model : nn.Module
        A registered model with ``sampling="next_band"``.
    first_band : Tensor, shape (B, C, T) or (C, T), optional
        The lowest band (level 0) to start from; None generates it from zeros.
    n_stages, n_chans, n_times : int, optional
        Size of the stack; default the model config's ``n_stages``, ``n_chans``, ``n_times``
        (``n_chans`` and ``n_times`` come from ``first_band`` when it is given).
    batch_size : int
        Stacks generated at once without ``first_band``.
    spec : ModelSpec, optional
        The model's spec (default: the registry's).

    Returns
    -------
    Tensor, shape (B, L, C, T) (or (L, C, T) for a (C, T) ``first_band``)
        The levels: level ``k`` holds bands ``0..k``.
    """
    spec = spec if spec is not None else model_spec(model)
    if spec.sampling != "next_band":
        raise ValueError(f"generate_bands: the model samples by {spec.sampling!r}, not next_band")
    cfg = model.config
    n_stages = n_stages or cfg.n_stages
    single = first_band is not None and first_band.ndim == 2
    if first_band is not None:
        first_band = first_band[None] if single else first_band
        if first_band.ndim != 3:
            raise ValueError(
                f"generate_bands: first_band must be (B, C, T) or (C, T), got "
                f"{tuple(first_band.shape)}"
            )
        b, n_chans, n_times = first_band.shape
        param = next(model.parameters())
        stack = first_band.new_zeros((b, n_stages, n_chans, n_times), dtype=param.dtype)
    else:
        param = next(model.parameters())
        n_chans, n_times = n_chans or cfg.n_chans, n_times or cfg.n_times
        stack = param.new_zeros((batch_size, n_stages, n_chans, n_times))
    levels = torch.zeros_like(stack)
    start = 0
    if first_band is not None:
        levels[:, 0] = first_band
        start = 1
        if n_stages > 1:
            stack[:, 1] = first_band
    for k in range(start, n_stages):
        levels[:, k] = model(stack).prediction[:, k].to(levels.dtype)
        if k + 1 < n_stages:
            stack[:, k + 1] = levels[:, k]
    return levels[0] if single else levels
