"""Evaluation of a MEG-to-text run: free-running generation next to its controls.

Every scored held-out segment is decoded four times, all free-running (greedy, or beam search
with ``text_num_beams > 1``; no teacher forcing):

- ``meg``: the model on the segment's real MEG;
- ``noise``: the model on Gaussian noise with the segment's per-channel mean and standard
  deviation;
- ``shuffled``: the model on the MEG of another scored segment, never one with the same text
  (:mod:`neurofm.evaluation.text_controls`);
- ``no_meg``: the decoder alone, without the MEG span (its text prior; trained for with the
  objective's ``meg_dropout``).

The texts are scored against the segments' words by
:func:`neurofm.evaluation.text_scores.score_text` (BLEU-1..4, ROUGE-L, WER, BERTScore when a
local scoring model is given; paired bootstrap intervals over segments; the margin over the
best control). Teacher-forced cross-entropies of the four inputs are reported apart, under
``teacher_forced``, labelled as such: they are not decoding scores (a decoder scores a noise
input about as well as MEG there, the field's known failure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neurofm.evaluation.common import EvaluateConfig, EvaluationResult, evenly, write_run_report
from neurofm.evaluation.text_controls import noise_like, shuffled_partners
from neurofm.evaluation.text_scores import format_text_report, score_text
from neurofm.generation.text import generate_text_ids, hf_generate_text_ids

CONDITIONS = ("meg", "noise", "shuffled", "no_meg")
REPORT_FILE = "report.md"


def condition_inputs(
    x: torch.Tensor, texts: list[str], seed: int
) -> dict[str, tuple[torch.Tensor, bool]]:
    """The model's input and whether it reads the MEG span, per condition of :data:`CONDITIONS`
    (shuffled partners never share the segment's text)."""
    partner = torch.from_numpy(shuffled_partners(texts, seed=seed))
    return {
        "meg": (x, True),
        "noise": (noise_like(x, seed=seed), True),
        "shuffled": (x[partner], True),
        "no_meg": (x, False),
    }


def decode_all(
    model: Any, x: torch.Tensor, *, use_meg: bool, tokenizer: Any, config: EvaluateConfig
) -> list[str]:
    """Free-running texts of every segment of ``x``, in batches of ``config.batch_size``."""
    texts: list[str] = []
    for start in range(0, x.shape[0], config.batch_size):
        chunk = x[start : start + config.batch_size]
        if config.text_num_beams > 1:
            ids = hf_generate_text_ids(
                model,
                chunk,
                max_new_tokens=config.text_max_new_tokens,
                eos_id=tokenizer.eos_id,
                pad_id=tokenizer.pad_id,
                use_meg=use_meg,
                num_beams=config.text_num_beams,
            )
        else:
            ids = generate_text_ids(
                model,
                chunk,
                max_new_tokens=config.text_max_new_tokens,
                eos_id=tokenizer.eos_id,
                use_meg=use_meg,
            )
        texts.extend(tokenizer.decode(row) for row in ids)
    return texts


@torch.no_grad()
def teacher_forced_bits(
    model: Any, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, use_meg: bool
) -> float:
    """Teacher-forced bits per text token (not a decoding score)."""
    logits = model(x, target, use_meg=use_meg).logits.float()
    per_token = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
    return float((per_token * mask).sum() / mask.sum() / np.log(2.0))


UNKNOWN_WORD = "UNKWORD"
"""Stands for a reference word outside the vocabulary: one plain token (BLEU, ROUGE and WER
tokenizers keep it whole) that no hypothesis holds, so a word the model cannot say counts as
missed (never dropped from the reference)."""


def reference_text(tokenizer: Any, text: str) -> str:
    """``text`` as the tokenizer normalises it, each unknown word kept as ``UNKWORD``."""
    ids = list(tokenizer.encode(text))
    pieces, run = [], []
    for i in ids + [tokenizer.unk_id]:
        if i == tokenizer.unk_id:
            if run:
                pieces.append(tokenizer.decode(run))
                run = []
            pieces.append(UNKNOWN_WORD)
        else:
            run.append(i)
    return " ".join(p for p in pieces[:-1] if p)


def evaluate_meg_text(
    model: Any, batch: Any, tokenizer: Any, config: EvaluateConfig
) -> dict[str, Any]:
    """Scores of ``model`` and its controls on the segments of ``batch`` (x, target, meta)."""
    model.eval()
    inputs = condition_inputs(batch.x, list(batch.meta["text"]), config.seed)
    hypotheses = {
        name: decode_all(model, x, use_meg=use_meg, tokenizer=tokenizer, config=config)
        for name, (x, use_meg) in inputs.items()
    }
    references = [reference_text(tokenizer, t) for t in batch.meta["text"]]
    unknown = sum(t.count(tokenizer.unk_id) for t in map(tokenizer.encode, batch.meta["text"]))
    result = score_text(references, hypotheses, n_boot=config.n_bootstrap, seed=config.seed)
    mask = torch.as_tensor(batch.meta["text_mask"]).float()
    teacher_forced = {
        name: teacher_forced_bits(model, x, batch.target, mask, use_meg=use_meg)
        for name, (x, use_meg) in inputs.items()
    }
    return {
        "task": "text",
        "n_windows": len(references),
        "text_scores": result,
        "teacher_forced": {
            "label": "teacher-forced bits per text token (NOT a decoding score)",
            "bits_per_token": teacher_forced,
        },
        "references_unknown_words": int(unknown),
        "decoding": {
            "kind": "greedy" if config.text_num_beams == 1 else "beam",
            "num_beams": config.text_num_beams,
            "max_new_tokens": config.text_max_new_tokens,
        },
        "samples": [
            {"reference": references[i], **{k: hypotheses[k][i] for k in CONDITIONS}}
            for i in range(min(5, len(references)))
        ],
        "markdown": format_text_report(result),
    }


def evaluate_meg_text_run(
    run: Any,
    *,
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | None = None,
) -> EvaluationResult:
    """Evaluate a ``meg_text`` run on up to ``max_windows`` segments of its held-out split and
    write ``report.json``, ``report.html`` and ``report.md`` (the score table)."""
    cfg = config or EvaluateConfig()
    dataset = run.dataset(cfg.split)
    indices = evenly(len(dataset), cfg.max_windows)
    batch = run.store.collate()([dataset[int(i)] for i in indices])
    report = evaluate_meg_text(run.model, batch, run.store.text_tokenizer, cfg)
    report["sfreq"] = run.store.sfreq
    result = EvaluationResult(report=report, arrays={})
    folder = write_run_report(result, run, cfg, out_dir=out_dir, checkpoint=checkpoint)
    (folder / REPORT_FILE).write_text(report["markdown"])
    return result
