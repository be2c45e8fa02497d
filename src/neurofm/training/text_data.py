"""Text segments as the data of a fit (``data.format: text_segments``).

``data.store`` names a MEG-MASC-like BIDS tree; every recording is cut into (MEG segment, text)
pairs (:func:`neurofm.data.text_segments.read_text_segments`: ``segment_mode``,
``words_per_segment``, ``window_seconds``) and split by whole subjects and/or stories
(``split_by``, ``val_groups``, ``test_groups``, ``split_seed``). The text vocabulary is built
from the train split's texts (or read from ``model.llm_path``) and saved with the run
(``<run_dir>/text_tokenizer/``), so that a resumed run and every reader of the run use the same
ids. Items are tokenized as ``words + </s>``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from neurofm.data.text_segments import (
    TextSegmentDataset,
    collate_text_segments,
    read_text_segments,
    split_segments,
)
from neurofm.errors import ConfigError
from neurofm.fileio import write_json_atomic
from neurofm.tokenizers.text_vocab import (
    PretrainedText,
    WordVocabulary,
    load_text_tokenizer,
)

TEXT_TOKENIZER_DIR = "text_tokenizer"
TEXT_DATA_FILE = "text_data.json"  # what inference needs: sfreq, window_seconds, words_per_segment


class TextIds:
    """``text -> word ids + </s>`` with a text tokenizer (a picklable callable for loaders)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> list[int]:
        return self.tokenizer.encode(text) + [self.tokenizer.eos_id]


class TextSegmentSource:
    """The segments of a BIDS tree, split as the ``data`` section says.

    Parameters
    ----------
    data : DataConfig
        A ``data`` section with ``format: text_segments``.
    """

    def __init__(self, data: Any) -> None:
        self.root = Path(data.store)
        options: dict[str, Any] = {
            "mode": data.segment_mode,
            "words_per_segment": data.words_per_segment,
            "window_seconds": data.window_seconds,
            "drop_incomplete": True,
        }
        try:
            segments = read_text_segments(self.root, **options)
        except (OSError, ValueError) as err:
            raise ConfigError(f"data.store: {str(self.root)!r}: {err}") from err
        self.splits = split_segments(
            segments,
            by=data.split_by,
            val=data.val_groups,
            test=data.test_groups,
            seed=data.split_seed,
        )
        rates = {float(s.sfreq) for s in segments}
        if len(rates) != 1:
            raise ConfigError(f"data.store: {str(self.root)!r} mixes sampling rates {rates} Hz")
        self.sfreq = rates.pop()
        self.text_tokenizer: WordVocabulary | PretrainedText | None = None
        self.fingerprint = None
        self.manifest: dict[str, Any] = {}  # no prepared store: nothing was filtered

    def dataset(self, split: str) -> TextSegmentDataset:
        """The segments of ``split`` as a dataset of signal + text ids."""
        if self.text_tokenizer is None:
            raise RuntimeError("TextSegmentSource: set text_tokenizer before building datasets")
        segments = self.splits.get(split)
        if not segments:
            raise ConfigError(f"data: split {split!r} of {str(self.root)!r} holds no segments")
        return TextSegmentDataset(segments, tokenizer=TextIds(self.text_tokenizer))

    def collate(self) -> Any:
        """The collate function of this source's datasets (padding with the text pad id)."""
        return partial(collate_text_segments, pad_id=self.text_tokenizer.pad_id)


def prepare_text(source: TextSegmentSource, cfg: Any, run_dir: Path, resuming: bool) -> None:
    """Give ``source`` its text tokenizer: the run's, a distillation teacher run's
    (``objective.teacher``), the LLM's, or one built from train texts (``model.vocab_size``
    words at most), saved in the run folder of the fit config ``cfg`` with the segmentation
    that inference repeats (``text_data.json``)."""
    data, model, teacher = cfg.data, cfg.model, cfg.objective.get("teacher")
    folder = run_dir / TEXT_TOKENIZER_DIR
    if resuming:
        tokenizer = load_text_tokenizer(folder)
    elif teacher:
        tokenizer = load_text_tokenizer(Path(teacher) / TEXT_TOKENIZER_DIR)
    elif model.get("llm_path"):
        tokenizer = PretrainedText(model["llm_path"])
    else:
        texts = [s.text for s in source.splits["train"]]
        tokenizer = WordVocabulary.build(texts, vocab_size=int(model["vocab_size"]))
    if tokenizer.vocab_size > int(model["vocab_size"]):
        raise ConfigError(
            f"model.vocab_size: {model['vocab_size']}, but the text tokenizer has "
            f"{tokenizer.vocab_size} ids"
        )
    if not resuming:
        tokenizer.save(folder)
        write_json_atomic(
            run_dir / TEXT_DATA_FILE,
            {
                "sfreq": source.sfreq,
                "window_seconds": data.window_seconds,
                "words_per_segment": data.words_per_segment,
                "segment_mode": data.segment_mode,
            },
        )
    source.text_tokenizer = tokenizer
