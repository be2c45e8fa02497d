"""Flat, block-causal and BPE tokenizers: exact inverses of their layouts (R11 for BPE)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.registry import TOKENIZERS, create
from neurofm.tokenizers.base import load_tokenizer

AMPLITUDE = {"name": "mulaw", "n_levels": 32}


def _signal(shape=(2, 4, 96), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal(shape), axis=-1).astype(np.float32)


def test_flat_time_order_interleaves_channels_per_sample():
    tok = create(TOKENIZERS, {"name": "flat", "amplitude": AMPLITUDE}).fit(_signal())
    x = _signal(seed=1)
    grid = tok.amplitude.encode(x).codes  # (B, C, T)
    flat = tok.encode(x).codes
    assert flat.shape == (2, 4 * 96)
    assert np.array_equal(flat[:, :4], grid[:, :, 0]) and np.array_equal(
        flat[:, 4:8], grid[:, :, 1]
    )
    channel = create(TOKENIZERS, {"name": "flat", "amplitude": AMPLITUDE, "order": "channel"})
    channel.fit(_signal())
    assert np.array_equal(channel.encode(x).codes[:, :96], grid[:, 0])


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "flat"},
        {"name": "flat", "order": "channel"},
        {"name": "block_causal", "block_chans": 2, "block_times": 8},
        {"name": "block_causal", "block_chans": None, "block_times": 1},
    ],
)
def test_flat_layouts_invert_exactly(spec):
    tok = create(TOKENIZERS, {**spec, "amplitude": AMPLITUDE}).fit(_signal())
    x = _signal(seed=2)
    out = tok.encode(x)
    grid = tok.amplitude.encode(x).codes
    assert np.array_equal(tok.decode(out), tok.amplitude.decode(grid))
    assert np.array_equal(tok.decode(out.codes), tok.amplitude.decode(grid))  # channels from fit
    assert sorted(tok.order(4, 96).tolist()) == list(range(4 * 96))


def test_block_causal_order_is_causal_in_time_blocks():
    tok = create(
        TOKENIZERS,
        {"name": "block_causal", "amplitude": AMPLITUDE, "block_chans": 2, "block_times": 4},
    )
    order = tok.order(4, 16).numpy()
    time_of_position = order % 16
    block = time_of_position // 4
    assert (np.diff(block) >= 0).all()  # time blocks never go back
    assert set(time_of_position[:8]) == {0, 1, 2, 3}  # first block: channels 0-1, samples 0-3
    assert set((order[:8] // 16).tolist()) == {0, 1}
    with pytest.raises(ValueError, match="does not divide"):
        tok.codes_shape((2, 4, 15))
    with pytest.raises(ValueError, match="does not divide"):
        tok.fit(_signal()).encode(_signal(shape=(1, 4, 15)))


def _bpe():
    return create(
        TOKENIZERS, {"name": "bpe", "amplitude": AMPLITUDE, "n_merges": 40, "word_length": 48}
    )


def test_bpe_decode_encode_is_exact_on_codes():
    tok = _bpe().fit(_signal(shape=(4, 4, 256)), fitted_on="synthetic:train")
    assert tok.vocab_size > 32 + 2  # learned merges
    for x in (_signal(seed=5), np.zeros((2, 4, 96), np.float32), _signal(seed=6) * 1e3):
        out = tok.encode(x)
        assert out.codes.min() >= 0 and out.codes.max() < tok.vocab_size
        grid = tok.amplitude.encode(x).codes
        assert np.array_equal(tok.decode_codes(out), grid)
        assert np.array_equal(tok.decode(out), tok.amplitude.decode(grid))
    assert tok.encode(_signal(seed=6) * 1e3).n_clipped > 0  # clipping reported through BPE
    assert tok.encode(np.zeros((2, 4, 96), np.float32)).codes.shape[1] < 4 * 96  # compressed


def test_bpe_layout_padding_and_errors():
    tok = _bpe().fit(_signal(shape=(4, 4, 256)))
    out = tok.encode(_signal(seed=7))
    lengths = out.info["lengths"]
    for row, n in zip(out.codes, lengths):
        assert (row[n:] == tok.pad_id).all() and row[n - 1] == tok.sep_id
        assert (row[:n] == tok.sep_id).sum() == 4
    bad = out.codes.copy()
    bad[0, lengths[0] - 1] = 0  # lose the last separator
    with pytest.raises(ValueError, match="separator"):
        tok.decode_codes(bad[:1, : lengths[0]])


def test_bpe_save_load_and_torch(tmp_path):
    tok = _bpe().fit(_signal(shape=(4, 4, 256)), fitted_on="synthetic:train")
    x = _signal(seed=8)
    tok.save(tmp_path / "bpe")
    loaded = load_tokenizer(tmp_path / "bpe")
    assert loaded.fitted_on == "synthetic:train" and loaded.vocab_size == tok.vocab_size
    out = loaded.encode(torch.from_numpy(x))
    assert isinstance(out.codes, torch.Tensor)
    assert np.array_equal(out.codes.numpy(), tok.encode(x).codes)


def test_bpe_on_real_eeg(eeg_signal):
    tok = create(TOKENIZERS, {"name": "bpe", "n_merges": 64}).fit([eeg_signal[:, :1280]])
    held_out = eeg_signal[:, 1280:]
    out = tok.encode(held_out)
    assert np.array_equal(tok.decode_codes(out), tok.amplitude.encode(held_out).codes)
    assert out.codes.size < held_out.size  # merges shorten the sequence
