"""Contract tests over the whole TOKENIZERS registry (STYLE rule 7).

Every registered tokenizer: build ``tiny``, fit, encode, check shapes against ``codes_shape`` /
``embeddings_shape`` and codes against ``vocab_size``, decode to the input shape, follow the
input's type, and save / load to identical codes. A registered name without a case fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.registry import TOKENIZERS, create
from neurofm.tokenizers.base import Tokenizer, load_tokenizer

# name -> input shape (B, C, T) of its contract case
CASES: dict[str, tuple[int, int, int]] = {
    "mulaw": (2, 4, 64),
    "uniform": (2, 4, 64),
    "quantile": (2, 4, 64),
    "flat": (2, 4, 64),
    "block_causal": (2, 4, 64),
    "bpe": (2, 4, 64),
    "bands": (2, 3, 128),
    "band_rvq": (2, 4, 32),
    "patch": (2, 3, 64),
    "rvq": (2, 4, 32),
    "spike_tokens": (2, 4, 64),
    "count_tokens": (2, 4, 64),
    "lfp_tokens": (2, 4, 64),
}
# name -> what its input holds, made from the random walk (spike rasters and counts: integers)
INPUTS = {
    "spike_tokens": lambda x: (np.abs(x) > 2.0).astype(np.float32),
    "count_tokens": lambda x: np.round(np.abs(x)).astype(np.float32),
}
# name -> the optional library it needs
OPTIONAL = {"band_rvq": "vector_quantize_pytorch", "rvq": "vector_quantize_pytorch"}


def _data(shape, seed, name=None):
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.standard_normal(shape), axis=-1).astype(np.float32)
    return INPUTS[name](x) if name in INPUTS else x


def _matches(shape, expected) -> bool:
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def test_every_registered_tokenizer_has_a_case():
    missing = sorted(set(TOKENIZERS.names()) - set(CASES))
    stale = sorted(set(CASES) - set(TOKENIZERS.names()))
    assert not missing, f"registered tokenizers without a contract case: {missing}"
    assert not stale, f"contract cases for unregistered tokenizers: {stale}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_tokenizer_contract(name, tmp_path):
    shape = CASES[name]
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name], reason=f"{name} needs the vq extra")
    tok = create(TOKENIZERS, {"name": name, "preset": "tiny"})
    assert isinstance(tok, Tokenizer) and tok.registry_name == name
    assert tok.fit(_data((4, *shape[1:]), 0, name), fitted_on="contract:train") is tok
    assert tok.is_fitted
    assert tok.fitted_on == ("contract:train" if tok.requires_fit else None)
    x = _data(shape, 1, name)
    out = tok.encode(x)
    expected = tok.codes_shape(shape)
    if expected is None:
        assert out.codes is None and out.embeddings is not None
        assert tok.vocab_size is None
    else:
        assert isinstance(out.codes, np.ndarray) and out.codes.dtype == np.int64
        assert _matches(out.codes.shape, expected), (out.codes.shape, expected)
        assert 0 <= out.codes.min() and out.codes.max() < tok.vocab_size
    if tok.embeddings_shape(shape) is not None:
        assert out.embeddings.shape == tok.embeddings_shape(shape)
    assert isinstance(out.n_clipped, int) and out.n_clipped >= 0
    if tok.decodable:
        decoded = tok.decode(out)
        assert isinstance(decoded, np.ndarray) and decoded.shape == shape
        assert np.isfinite(decoded).all()
    else:
        with pytest.raises(TypeError, match="cannot be decoded"):
            tok.decode(out)
    # one item without a batch axis, and torch in -> torch out
    single = tok.encode(x[0])
    assert (single.codes if single.codes is not None else single.embeddings).ndim == (
        (out.codes if out.codes is not None else out.embeddings).ndim - 1
    )
    as_torch = tok.encode(torch.from_numpy(x))
    tokens = as_torch.codes if as_torch.codes is not None else as_torch.embeddings
    assert isinstance(tokens, torch.Tensor)
    if tok.decodable:
        assert isinstance(tok.decode(as_torch), torch.Tensor)
    # save / load: identical tokens
    tok.save(tmp_path / name)
    loaded = load_tokenizer(tmp_path / name)
    assert type(loaded) is type(tok) and loaded.fitted_on == tok.fitted_on
    again = loaded.encode(x)
    if out.codes is not None:
        assert np.array_equal(again.codes, out.codes)
    else:
        assert np.array_equal(again.embeddings, out.embeddings)
    assert not list(tmp_path.glob(f"{name}/*.pt")) and not list(tmp_path.glob(f"{name}/*.pkl"))
