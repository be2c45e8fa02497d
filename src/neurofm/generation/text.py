"""Free-running text generation of a MEG-to-text model (no teacher forcing).

:func:`generate_text_ids` decodes greedily with the language model's key/value cache: the
prefix ``[<s>, <meg>, MEG tokens, </meg>]`` (``[<s>]`` without MEG) is read once, then one token
per step. :func:`hf_generate_text_ids` hands the same prefix embeddings to ``transformers``'
``generate`` (greedy or beam search); the two agree on greedy decoding (a parity test) and are
compared for speed in benchmark P11.

The model is any module with ``encode``, ``meg_tokens``, ``prefix``, ``embed_ids`` and an
``llm`` (a Hugging Face causal LM), as :class:`neurofm.models.meg_text.MegToText` has.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def prefix_embeddings(model: nn.Module, x: Tensor, *, use_meg: bool = True) -> Tensor:
    """The decoder's prefix embeddings (B, P, hidden) for MEG segments ``x`` (B, C, T)."""
    meg = model.meg_tokens(model.encode(x))[0] if use_meg else None
    return model.prefix(meg, x.shape[0], x.device)


def _trim(ids: Tensor, eos_id: int) -> list[list[int]]:
    """Generated ids (B, N) -> one list per item, cut before its first ``eos_id``."""
    out = []
    for row in ids.tolist():
        out.append(row[: row.index(eos_id)] if eos_id in row else row)
    return out


@torch.no_grad()
def generate_text_ids(
    model: nn.Module,
    x: Tensor,
    *,
    max_new_tokens: int,
    eos_id: int,
    use_meg: bool = True,
    prefix: Tensor | None = None,
) -> list[list[int]]:
    """Greedy decoding with a key/value cache.

    Parameters
    ----------
    model : nn.Module
        A MEG-to-text model in eval mode.
    x : Tensor, shape (B, C, T)
        MEG segments (ignored when ``prefix`` is given).
    max_new_tokens : int
        Most tokens generated per item.
    eos_id : int
        End of text; an item stops there (the id itself is not returned).
    use_meg : bool
        False: the decoder alone (``[<s>]`` prefix).
    prefix : Tensor, shape (B, P, hidden), optional
        Precomputed prefix embeddings.

    Returns
    -------
    list of list of int
        The generated ids of each item.
    """
    if prefix is None:
        prefix = prefix_embeddings(model, x, use_meg=use_meg)
    out = model.llm(inputs_embeds=prefix, use_cache=True)
    cache = out.cache
    token = out.logits[:, -1].argmax(-1)  # (B,)
    tokens = [token]
    done = token == eos_id
    for _ in range(max_new_tokens - 1):
        if bool(done.all()):
            break
        out = model.llm(inputs_embeds=model.embed_ids(token[:, None]), cache=cache, use_cache=True)
        cache = out.cache
        token = out.logits[:, -1].argmax(-1).masked_fill(done, eos_id)
        tokens.append(token)
        done = done | (token == eos_id)
    return _trim(torch.stack(tokens, dim=1), eos_id)


@torch.no_grad()
def hf_generate_text_ids(
    model: nn.Module,
    x: Tensor,
    *,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    use_meg: bool = True,
    num_beams: int = 1,
    prefix: Tensor | None = None,
) -> list[list[int]]:
    """Decoding by ``transformers``' ``generate`` from the same prefix (greedy or beams)."""
    if prefix is None:
        prefix = prefix_embeddings(model, x, use_meg=use_meg)
    mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=prefix.device)
    ids = model.llm.generate(
        inputs_embeds=prefix,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        min_new_tokens=1,
        do_sample=False,
        num_beams=num_beams,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    return _trim(ids, eos_id)
