"""Stage-by-stage sampling of band-stage codes for models whose spec says
``sampling="band_tokens"`` (the VAR variant of next-band generation).

The model maps codes (B, N), stage after stage, to logits (B, N, V) where stage ``k`` depends
on stages ``< k`` only. Generation fills one stage per forward: all its tokens are drawn at once
from the logits at its positions, with the codes of later stages still placeholders (zeros),
which the block-causal model never reads for this stage. With ``prompt`` the first stages are
given (e.g. the codes of a real window's lowest band) and only the later ones are drawn.
Classifier-free guidance mixes the logits of the label with those of the null class:
``(1 + cfg_scale) * conditional - cfg_scale * unconditional``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neurofm.generation.sampling import filter_logits
from neurofm.registry import model_spec
from neurofm.types import ModelSpec


@torch.no_grad()
def generate_band_tokens(
    model: nn.Module,
    *,
    batch_size: int = 1,
    prompt: Tensor | None = None,
    label: Tensor | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    cfg_scale: float = 0.0,
    generator: torch.Generator | None = None,
    spec: ModelSpec | None = None,
) -> Tensor:
    """Sample the codes (B, N) of every stage, coarse to fine.

    Parameters
    ----------
    model : nn.Module
        A registered model with ``sampling="band_tokens"`` (config ``stage_tokens``).
    batch_size : int
        Sequences drawn at once (the prompt's batch size when a prompt is given).
    prompt : Tensor, shape (B, n), optional
        Codes of the first stages (``n`` a sum of the first ``stage_tokens``), kept as given.
    label : Tensor, shape (B,), optional
        Class of each sequence (None: the null class).
    temperature : float
        Softmax temperature; 0 takes the most likely code.
    top_k : int, optional
        Sample among the ``top_k`` most likely codes only.
    cfg_scale : float
        Classifier-free guidance weight (0: none; needs ``label``).
    generator : torch.Generator, optional
        Random source of the draws.
    spec : ModelSpec, optional
        The model's spec (default: the registry's).

    Returns
    -------
    Tensor, shape (B, N), int64
    """
    spec = spec if spec is not None else model_spec(model)
    if spec.sampling != "band_tokens":
        raise ValueError(
            f"generate_band_tokens: the model samples by {spec.sampling!r}, not band_tokens"
        )
    if cfg_scale and label is None:
        raise ValueError("generate_band_tokens: cfg_scale needs a label")
    stage_tokens = list(model.config.stage_tokens)
    bounds = [0]
    for n in stage_tokens:
        bounds.append(bounds[-1] + n)
    device = next(model.parameters()).device
    first = 0
    if prompt is not None:
        if prompt.ndim != 2 or prompt.shape[1] not in bounds:
            raise ValueError(
                f"generate_band_tokens: prompt must be (B, n) with n one of {bounds[:-1]} (whole "
                f"stages), got {tuple(prompt.shape)}"
            )
        batch_size = prompt.shape[0]
        first = bounds.index(prompt.shape[1])
    codes = torch.zeros(batch_size, bounds[-1], dtype=torch.long, device=device)
    if prompt is not None:
        codes[:, : prompt.shape[1]] = prompt.to(device)
    if label is not None:
        label = label.to(device)
    for k in range(first, len(stage_tokens)):
        part = slice(bounds[k], bounds[k + 1])
        logits = model(codes, label=label).logits[:, part].float()
        if cfg_scale:
            free = model(codes, label=None).logits[:, part].float()
            logits = (1 + cfg_scale) * logits - cfg_scale * free
        if temperature == 0:
            codes[:, part] = logits.argmax(-1)
            continue
        probs = filter_logits(logits / temperature, top_k=top_k).softmax(-1)
        flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
        codes[:, part] = flat.reshape(batch_size, -1)
    return codes
