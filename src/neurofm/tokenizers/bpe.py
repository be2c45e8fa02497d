"""Byte-pair encoding over quantized amplitude codes, trained with Hugging Face ``tokenizers``.

Each channel's amplitude codes (mu-law by default) are written as a string, one character per
code (code ``k`` is the private-use character ``U+F0000 + k``), and a ``tokenizers.models.BPE``
model is trained on those strings with ``BpeTrainer`` (every amplitude code is in the initial
alphabet, so any code sequence can be encoded). Merges therefore join runs of successive samples
of one channel.

Layout of the codes ``(B, T_tokens)``: channel 0's tokens, a separator, channel 1's tokens, a
separator, ...; shorter items are followed by a padding id, and ``info["lengths"]`` holds each
item's length. ``decode(encode(x))`` reproduces the amplitude codes exactly; the signal error is
the amplitude quantizer's. The trained vocabulary and merges are saved as integer tensors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from neurofm.registry import TOKENIZERS, create
from neurofm.tokenizers.base import Tokenizer, like_input, to_tensor
from neurofm.types import TokenizerOutput

FIRST_CHAR = 0xF0000  # code k is written as chr(FIRST_CHAR + k) (Unicode private-use plane)
MAX_LEVELS = 0xFFFFE - FIRST_CHAR


def _amplitude_default() -> dict[str, Any]:
    return {"name": "mulaw", "n_levels": 256}


@dataclass
class BPEConfig:
    amplitude: dict[str, Any] = field(
        default_factory=_amplitude_default
    )  # per-sample quantizer spec
    n_merges: int = 512  # merges learned at most (vocabulary = amplitude levels + merges + 2)
    min_frequency: int = 2  # a pair must occur this often in the fit data to be merged
    max_token_length: int = 16  # most amplitude codes one token may stand for
    word_length: int = 256  # fit sequences are cut into words of this many codes
    max_fit_codes: int = 4_000_000  # most amplitude codes used to learn the merges

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"amplitude": {"name": "mulaw", "n_levels": 16}, "n_merges": 32, "word_length": 64},
        "small": {"n_merges": 512},
        "base": {"n_merges": 4096},
    }

    def __post_init__(self) -> None:
        for key in (
            "n_merges",
            "min_frequency",
            "max_token_length",
            "word_length",
            "max_fit_codes",
        ):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")


def _strings(codes: np.ndarray) -> list[str]:
    """One string per row of an integer ``(N, T)`` code array."""
    chars = (codes.astype(np.uint32) + FIRST_CHAR).astype("<u4")
    return [row.tobytes().decode("utf-32-le") for row in chars]


@TOKENIZERS.register("bpe", config=BPEConfig)
class BPETokenizer(Tokenizer):
    """BPE over per-channel amplitude code sequences, flattened to (B, T_tokens) with separators."""

    codes_layout = "B T"
    requires_fit = True

    def __init__(self, config: BPEConfig) -> None:
        super().__init__(config)
        self.amplitude = create(TOKENIZERS, config.amplitude, key="tokenizer.amplitude")
        if getattr(self.amplitude, "codes_layout", None) != "B C T":
            raise ValueError(
                f"tokenizer.amplitude: needs a per-sample quantizer (codes 'B C T'), "
                f"got {self.amplitude.registry_name!r}"
            )
        if self.amplitude.vocab_size > MAX_LEVELS:
            raise ValueError(
                f"tokenizer.amplitude: at most {MAX_LEVELS} levels, got {self.amplitude.vocab_size}"
            )
        self.register_buffer(
            "token_codes", torch.zeros(0, dtype=torch.int64)
        )  # codes of all tokens
        self.register_buffer("token_offsets", torch.zeros(1, dtype=torch.int64))  # (V_bpe + 1,)
        self.register_buffer("merges", torch.zeros(0, 2, dtype=torch.int64))  # (M, 2) token ids
        self._model: Any = None

    # -- vocabulary ----------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        """Number of BPE tokens (amplitude codes + merged tokens), without separator and padding."""
        if self.token_offsets.numel() > 1:
            return int(self.token_offsets.numel() - 1)
        return self.amplitude.vocab_size + self.config.n_merges

    @property
    def sep_id(self) -> int:
        """The id ending each channel's tokens."""
        return self.n_tokens

    @property
    def pad_id(self) -> int:
        """The id filling the end of shorter items of a batch."""
        return self.n_tokens + 1

    @property
    def vocab_size(self) -> int:
        return self.n_tokens + 2

    def codes_shape(self, input_shape: tuple[int, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-2], None)

    def _build_model(self) -> None:
        """The Hugging Face BPE model from the saved vocabulary and merges."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models

        offsets = self.token_offsets.tolist()
        codes = self.token_codes.numpy()
        texts = _strings_ragged(codes, offsets)
        vocab = {text: i for i, text in enumerate(texts)}
        merges = [(texts[a], texts[b]) for a, b in self.merges.tolist()]
        self._model = HFTokenizer(models.BPE(vocab=vocab, merges=merges))

    def load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state_tensors(state)
        if self.token_offsets.numel() > 1:
            self._build_model()

    # -- fitting -------------------------------------------------------------------------------
    def _fit(self, signals: Iterable[np.ndarray]) -> None:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models, trainers

        segments = list(signals)
        self.amplitude.fit(segments)
        n_levels = self.amplitude.vocab_size

        def words() -> Iterable[str]:
            budget = self.config.max_fit_codes
            for segment in segments:
                codes = np.asarray(self.amplitude.encode(np.asarray(segment)).codes)  # (C, T)
                step = self.config.word_length
                for start in range(0, codes.shape[1], step):
                    block = codes[:, start : start + step][:, :budget]
                    yield from _strings(block)
                    budget -= block.size
                    if budget <= 0:
                        return

        model = HFTokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=n_levels + self.config.n_merges,
            min_frequency=self.config.min_frequency,
            initial_alphabet=[chr(FIRST_CHAR + k) for k in range(n_levels)],
            limit_alphabet=n_levels,
            max_token_length=self.config.max_token_length,
            show_progress=False,
        )
        model.train_from_iterator(words(), trainer)
        vocab = model.get_vocab()
        texts = [""] * len(vocab)
        for text, index in vocab.items():
            texts[index] = text
        lengths = [len(t) for t in texts]
        flat = "".join(texts)
        self.token_codes = torch.tensor([ord(ch) - FIRST_CHAR for ch in flat], dtype=torch.int64)
        self.token_offsets = torch.tensor(
            np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int64
        )
        pairs = json.loads(model.to_str())["model"]["merges"]
        pairs = [p.split(" ") if isinstance(p, str) else p for p in pairs]
        self.merges = torch.tensor(
            [[vocab[a], vocab[b]] for a, b in pairs], dtype=torch.int64
        ).reshape(-1, 2)
        self._model = model

    # -- encode / decode -----------------------------------------------------------------------
    def encode(self, x: Any) -> TokenizerOutput:
        """Signal (B, C, T) or (C, T) -> token ids (B, T_tokens) or (T_tokens,).

        ``info["lengths"]`` holds each item's number of tokens (separators included); the rest of
        a row is ``pad_id``. ``info["n_codes"]`` counts the amplitude codes encoded.
        """
        self.check_fitted()
        inner = self.amplitude.encode(x)
        grid = np.asarray(to_tensor(inner.codes).cpu())
        batched = grid.ndim == 3
        grid = grid if batched else grid[None]
        n_batch, n_chans, n_times = grid.shape
        found = self._model.encode_batch(
            _strings(grid.reshape(n_batch * n_chans, n_times)), add_special_tokens=False
        )
        rows = []
        for b in range(n_batch):
            parts = []
            for c in range(n_chans):
                parts += [np.asarray(found[b * n_chans + c].ids, dtype=np.int64), [self.sep_id]]
            rows.append(np.concatenate(parts).astype(np.int64))
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        out = np.full((n_batch, int(lengths.max())), self.pad_id, dtype=np.int64)
        for b, row in enumerate(rows):
            out[b, : len(row)] = row
        codes = torch.from_numpy(out if batched else out[0])
        if isinstance(x, torch.Tensor):
            codes = codes.to(x.device)
        info = {
            **inner.info,
            "n_chans": n_chans,
            "n_times": n_times,
            "lengths": lengths.tolist(),
            "n_codes": int(grid.size),
        }
        return TokenizerOutput(codes=like_input(codes, x), n_clipped=inner.n_clipped, info=info)

    def decode_codes(self, tokens: Any) -> Any:
        """Token ids (B, T_tokens) or (T_tokens,) -> the amplitude codes (B, C, T) or (C, T)."""
        source = tokens.codes if isinstance(tokens, TokenizerOutput) else tokens
        t = np.asarray(to_tensor(source).cpu())
        batched = t.ndim == 2
        if t.ndim not in (1, 2):
            raise ValueError(f"decode: expected token ids (B, N) or (N,), got shape {t.shape}")
        offsets = self.token_offsets.numpy()
        table = self.token_codes.numpy()
        items = []
        for b, row in enumerate(t if batched else t[None]):
            pad = np.flatnonzero(row == self.pad_id)
            if pad.size and (row[pad[0] :] != self.pad_id).any():
                raise ValueError(f"decode: item {b} has tokens after padding")
            row = row[: pad[0]] if pad.size else row
            if row.size and (row.min() < 0 or row.max() > self.sep_id):
                raise ValueError(f"decode: item {b} holds ids outside [0, {self.vocab_size})")
            if row.size == 0 or row[-1] != self.sep_id:
                raise ValueError(
                    f"decode: item {b} does not end with the separator id {self.sep_id}"
                )
            cuts = np.flatnonzero(row == self.sep_id)
            channels = np.split(row, cuts + 1)[:-1]
            decoded = [_expand(ch[:-1], offsets, table) for ch in channels]
            if len({len(d) for d in decoded}) != 1:
                raise ValueError(
                    f"decode: item {b} channels decode to different lengths "
                    f"{sorted({len(d) for d in decoded})}"
                )
            items.append(np.stack(decoded))
        if len({item.shape for item in items}) != 1:
            raise ValueError(f"decode: items have different shapes {[i.shape for i in items]}")
        grid = np.stack(items) if batched else items[0]
        out = torch.from_numpy(grid)
        if isinstance(source, torch.Tensor):
            out = out.to(source.device)
        return like_input(out, source)

    def decode(self, codes: Any) -> Any:
        """Token ids (or the TokenizerOutput) -> signal (B, C, T) or (C, T) via the quantizer."""
        self.check_fitted()
        grid = self.decode_codes(codes)
        source = codes.codes if isinstance(codes, TokenizerOutput) else codes
        return like_input(to_tensor(self.amplitude.decode(grid)), source)


def _expand(ids: np.ndarray, offsets: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Concatenate the amplitude codes of each token id in ``ids`` (vectorised gather)."""
    starts, lengths = offsets[ids], offsets[ids + 1] - offsets[ids]
    total = int(lengths.sum())
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return table[shift + np.arange(total)]


def _strings_ragged(codes: np.ndarray, offsets: list[int]) -> list[str]:
    """The string of each token, from the flat code table and its offsets."""
    chars = (codes.astype(np.uint32) + FIRST_CHAR).astype("<u4").tobytes().decode("utf-32-le")
    return [chars[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
