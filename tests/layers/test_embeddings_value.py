"""The optional value embedding: codes also read as ordered amplitudes in [-1, 1]."""

from __future__ import annotations

import torch

from neurofm.layers import ChannelTokenEmbedding
from neurofm.layers.embeddings import code_values


def test_code_values_span_minus_one_to_one_evenly():
    values = code_values(torch.arange(5), 5)
    torch.testing.assert_close(values, torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))


def test_value_embedding_adds_a_linear_map_of_the_amplitude():
    torch.manual_seed(0)
    emb = ChannelTokenEmbedding(9, 6, n_chans=3, value_embedding=True)
    codes = torch.randint(0, 9, (2, 3, 5))
    out = emb(codes)
    v = codes.float() / 4.0 - 1.0
    expected = emb.token(codes) + emb.value(v.unsqueeze(-1)) + emb.channel.weight[None, :, None]
    torch.testing.assert_close(out, expected)
    # without the token table the embedding is affine in the code: neighbours are neighbours
    with torch.no_grad():
        emb.token.weight.zero_()
    steps = emb(torch.arange(9).view(1, 1, 9), channel_ids=torch.tensor([0])).diff(dim=2)
    torch.testing.assert_close(steps, steps[:, :, :1].expand_as(steps))


def test_value_embedding_is_off_by_default_and_skips_float_tokens():
    torch.manual_seed(0)
    assert ChannelTokenEmbedding(9, 6).value is None
    emb = ChannelTokenEmbedding(9, 6, value_embedding=True)
    tokens = torch.randn(1, 2, 4, 6)
    torch.testing.assert_close(emb(tokens), tokens)
