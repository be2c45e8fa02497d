"""Text tokenizers of the MEG-to-text decoder, built offline.

:class:`WordVocabulary` is a word-level tokenizer (Hugging Face ``tokenizers``: lowercase,
punctuation split, the most frequent ``vocab_size - len(SPECIAL_TOKENS)`` words of the training
texts, ``<unk>`` for the rest) made from the training texts and saved with the run
(``text_tokenizer.json``). :func:`load_text_tokenizer` also opens the tokenizer of a local
language-model folder (``transformers.AutoTokenizer``), adding the MEG span tokens.

Every text tokenizer here has ``encode(text) -> ids``, ``decode(ids) -> text``, ``vocab_size``
and the ids ``pad_id``, ``unk_id``, ``bos_id``, ``eos_id``, ``meg_start_id``, ``meg_end_id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>", "<meg>", "</meg>")
"""The special tokens, ids 0..5 of a :class:`WordVocabulary`."""
VOCAB_FILE = "text_tokenizer.json"


class WordVocabulary:
    """Word-level tokenizer over lowercased words (ids 0..5 are :data:`SPECIAL_TOKENS`).

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        A word-level ``tokenizers`` tokenizer whose first ids are the special tokens.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        ids = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        if ids != list(range(len(SPECIAL_TOKENS))):
            raise ValueError(f"WordVocabulary: special tokens must be ids 0..5, got {ids}")
        self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.meg_start_id, self.meg_end_id = ids

    @classmethod
    def build(cls, texts: Iterable[str], *, vocab_size: int) -> WordVocabulary:
        """The ``vocab_size`` most frequent words of ``texts`` (special tokens included)."""
        from tokenizers.models import WordLevel
        from tokenizers.trainers import WordLevelTrainer

        from tokenizers import Tokenizer, normalizers, pre_tokenizers

        if vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size must exceed {len(SPECIAL_TOKENS)}, got {vocab_size}")
        tokenizer = Tokenizer(WordLevel(unk_token="<unk>"))
        tokenizer.normalizer = normalizers.Lowercase()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("removed")]
        )
        trainer = WordLevelTrainer(
            vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
        )
        tokenizer.train_from_iterator(list(texts), trainer=trainer)
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        """Word ids of ``text`` (no special tokens)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids`` joined by spaces, special tokens skipped."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def save(self, directory: str | Path) -> Path:
        """Write ``text_tokenizer.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / VOCAB_FILE
        self.tokenizer.save(str(path))
        return path


class PretrainedText:
    """The tokenizer of a local language-model folder, with ``<meg>`` / ``</meg>`` added."""

    def __init__(self, path: str | Path) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.tokenizer.add_special_tokens({"additional_special_tokens": ["<meg>", "</meg>"]})
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.unk_id = int(self.tokenizer.unk_token_id or self.pad_id)
        self.bos_id = int(self.tokenizer.bos_token_id)
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.meg_start_id = int(self.tokenizer.convert_tokens_to_ids("<meg>"))
        self.meg_end_id = int(self.tokenizer.convert_tokens_to_ids("</meg>"))

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def save(self, directory: str | Path) -> Path:
        return Path(self.tokenizer.save_pretrained(str(directory))[0]).parent


def load_text_tokenizer(directory: str | Path) -> WordVocabulary | PretrainedText:
    """The text tokenizer saved in ``directory`` (a word vocabulary or a pretrained one)."""
    from tokenizers import Tokenizer

    directory = Path(directory)
    path = directory / VOCAB_FILE
    if path.is_file():
        return WordVocabulary(Tokenizer.from_file(str(path)))
    if (directory / "tokenizer_config.json").is_file():
        return PretrainedText(directory)
    raise FileNotFoundError(
        f"{directory}: holds no text tokenizer ({VOCAB_FILE} or a tokenizer_config.json)"
    )
