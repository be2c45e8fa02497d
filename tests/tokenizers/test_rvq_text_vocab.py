"""The rvq tokenizer (residual VQ over patches of all channels) and the offline word vocabulary
of the MEG-to-text decoder; the conv stem's length check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.layers.stem import ConvStem
from neurofm.tokenizers.text_vocab import SPECIAL_TOKENS, WordVocabulary, load_text_tokenizer


def test_rvq_fits_real_eeg_better_than_its_mean(sample_dir):
    pytest.importorskip("vector_quantize_pytorch")
    import mne

    from neurofm.registry import TOKENIZERS, create

    raw = mne.io.read_raw_edf(sample_dir / "eegbci_S001" / "S001R04.edf", verbose="error")
    x = raw.get_data(picks=list(range(4)), start=0, stop=64 * 40).astype(np.float32)
    windows = x.reshape(4, 40, 64).transpose(1, 0, 2)  # (40, 4, 64), in volts
    section = {"name": "rvq", "preset": "tiny", "fit_epochs": 10, "n_quantizers": 4}
    tok = create(TOKENIZERS, section).fit(windows[:32], fitted_on="eeg:train")
    held_out = windows[32:]
    codes = tok.encode(held_out).codes
    assert codes.shape == (8, 4, 16) and codes.dtype == np.int64
    error = np.mean((tok.decode(codes) - held_out) ** 2)
    assert error < 0.8 * np.mean((held_out - held_out.mean(-1, keepdims=True)) ** 2)
    with pytest.raises(ValueError, match="not a multiple of patch_len"):
        tok.encode(held_out[..., :62])


def test_word_vocabulary_is_built_offline_saved_and_reloaded(tmp_path):
    texts = ["Tara stood stock still.", "The cat, the rock!", "the the the"]
    vocab = WordVocabulary.build(texts, vocab_size=len(SPECIAL_TOKENS) + 4)
    assert vocab.vocab_size == len(SPECIAL_TOKENS) + 4
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.meg_start_id) == (0, 2, 3, 4)
    ids = vocab.encode("The ROCK zebra")
    assert ids[0] == vocab.encode("the")[0] and ids[-1] == vocab.unk_id  # unseen: <unk>
    assert vocab.decode(vocab.encode("the rock.")) == "the rock"
    vocab.save(tmp_path)
    again = load_text_tokenizer(tmp_path)
    assert again.encode("tara stood the cat") == vocab.encode("tara stood the cat")
    with pytest.raises(FileNotFoundError, match="holds no text tokenizer"):
        load_text_tokenizer(tmp_path / "absent")


def test_conv_stem_needs_whole_patches():
    stem = ConvStem(3, 8, strides=[2, 2])
    assert stem(torch.randn(2, 3, 16)).shape == (2, 4, 8)
    with pytest.raises(ValueError, match="multiple of the stem's total stride 4"):
        stem(torch.randn(2, 3, 18))
