"""The registered NeuroFM-X input tokenizers: spike rasters, binned counts, LFP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.cli.main import main
from neurofm.registry import TOKENIZERS, create
from neurofm.tokenizers.base import load_tokenizer


def test_spike_tokens_round_trip_the_raster_exactly(tmp_path):
    tok = create(TOKENIZERS, {"name": "spike_tokens", "n_units": 3, "d_model": 8, "sfreq": 100.0})
    raster = np.zeros((2, 3, 20), dtype=np.float32)
    raster[0, 1, 4] = 2  # two spikes of unit 1 in sample 4
    raster[0, 0, 4] = raster[0, 2, 9] = raster[1, 0, 0] = 1
    out = tok.encode(raster)
    assert out.embeddings.shape == (2, 4, 8) and out.info["n_spikes"] == [4, 1]
    np.testing.assert_allclose(out.info["events"][0, :, 0], [0, 1, 1, 2])
    np.testing.assert_allclose(out.info["events"][0, :, 1], [0.04, 0.04, 0.04, 0.09])
    assert (out.info["events"][1, 1:, 0] == -1).all() and not out.embeddings[1, 1:].any()
    np.testing.assert_array_equal(tok.decode(out), raster)
    with pytest.raises(ValueError, match="non-negative integers"):
        tok.encode(raster + 0.5)
    tok.save(tmp_path / "spikes")
    again = load_tokenizer(tmp_path / "spikes").encode(raster)
    np.testing.assert_array_equal(again.embeddings, out.embeddings)


def test_count_tokens_multi_rate_and_least_squares_decode():
    tok = create(TOKENIZERS, {"name": "count_tokens", "n_units": 3, "d_model": 8, "rates": [1, 4]})
    counts = np.random.default_rng(0).poisson(2.0, size=(2, 3, 10)).astype(np.float32)
    out = tok.encode(counts)
    assert out.embeddings.shape == (2, 10 + 3, 8) and out.info["lengths"] == [10, 3]
    np.testing.assert_allclose(tok.decode(out), counts, atol=1e-3)
    with torch.no_grad():
        direct = tok.embed(torch.from_numpy(counts).transpose(1, 2))
    np.testing.assert_allclose(out.embeddings[:, :10], direct.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"expected 3 units \(B, 3, T\)"):
        tok.encode(counts[:, :2])
    with pytest.raises(ValueError, match="rates must be distinct and start at 1"):
        create(TOKENIZERS, {"name": "count_tokens", "rates": [4, 16]})


def test_lfp_tokens_scale_is_fitted_on_train_only(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 2.0, size=(3, 2, 400))
    test = rng.normal(-50.0, 30.0, size=(1, 2, 400))
    tok = create(TOKENIZERS, {"name": "lfp_tokens", "n_chans": 2, "d_model": 9, "sfreq": 200.0})
    with pytest.raises(RuntimeError, match="not fitted"):
        tok.encode(test)
    tok.fit(train, fitted_on="synthetic:train")
    np.testing.assert_allclose(tok.center.numpy(), np.median(train, axis=(0, 2)), rtol=1e-6)
    assert np.allclose(tok.scale.numpy(), 2.0, rtol=0.1)  # the train scale, not the test one
    normalized = tok.normalize(test)
    assert normalized.mean() < -20  # the test block keeps its own level in train units
    out = tok.encode(test)
    assert out.embeddings.shape == (1, 100, 9) and tok.embeddings_shape((1, 2, 400)) == (1, 100, 9)
    tok.save(tmp_path / "lfp")
    loaded = load_tokenizer(tmp_path / "lfp")
    assert loaded.fitted_on == "synthetic:train"
    np.testing.assert_array_equal(loaded.encode(test).embeddings, out.embeddings)
    with pytest.raises(TypeError, match="cannot be decoded"):
        tok.decode(out)
    with pytest.raises(ValueError, match="constant"):
        create(TOKENIZERS, {"name": "lfp_tokens", "n_chans": 2}).fit(np.zeros((2, 50)))


def test_neurofm_list_shows_the_neural_tokenizers(capsys):
    assert main(["list", "--kind", "tokenizers"]) == 0
    text = capsys.readouterr().out
    assert "spike_tokens" in text and "(B, N, d)" in text
    assert "count_tokens" in text and "lfp_tokens" in text and "(B, T / pool, d)" in text
