"""Scores of decoded text next to controls, with paired intervals over segments.

Brain-to-text decoders can score well without reading the brain: a language model's prior,
or teacher forcing, produces plausible text from noise. :func:`score_text` therefore scores the
model's free-running hypotheses next to the same decoder's hypotheses for control inputs
(``noise``: random signal; ``shuffled``: another segment's signal; ``no_meg``: no signal, the
text prior alone) and states the margin of the model over the **best** control. It takes
generated text only; teacher-forced numbers are never produced here.

Metrics: corpus BLEU-1..4 (``sacrebleu``, 13a tokenisation, exponential smoothing), ROUGE-L F1
(``rouge-score``, mean over segments), WER (``jiwer``, total edits over total reference words),
BLEU, ROUGE-L and WER in percent; BERTScore F1 (``bert-score``) when it is installed and a local
model is given, otherwise reported as not computed with the reason. Intervals are percentile
bootstrap intervals over segments; every condition is resampled with the **same** segments, so
margins are paired. A corpus score of a resample is computed exactly from the per-segment
statistics (n-gram matches, lengths, edits) summed over the resampled segments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurofm.evaluation.intervals import block_resamples

CONTROLS = {
    "noise": "the decoder given random signal of the segment's shape",
    "shuffled": "the decoder given another segment's signal",
    "no_meg": "the decoder given no signal (the text prior alone)",
}
"""The default controls and what each one feeds the decoder."""

METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "wer")
LOWER_IS_BETTER = ("wer",)
_PUNCTUATION = re.compile(r"[^\w\s']")


def normalize_text(text: str) -> str:
    """Lower case, punctuation (but apostrophes) removed, single spaces."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def _bleu_statistics(references: list[str], hypotheses: list[str]) -> np.ndarray:
    """(M, 10) per segment: hypothesis length, reference length, matches and totals of 1-4-grams."""
    from sacrebleu.metrics import BLEU

    # the per-segment sufficient statistics of sacrebleu's corpus BLEU (its corpus score sums
    # them); a test checks that summing them here reproduces corpus_score
    stats = BLEU()._extract_corpus_statistics(hypotheses, [references])
    return np.asarray(stats, dtype=np.int64)


def _bleu(stats: np.ndarray, order: int) -> float:
    """Corpus BLEU (0-100) with n-grams up to ``order`` from summed statistics (10,)."""
    from sacrebleu.metrics import BLEU

    correct = [int(c) for c in stats[2 : 2 + order]]
    total = [int(t) for t in stats[6 : 6 + order]]
    score = BLEU.compute_bleu(
        correct,
        total,
        int(stats[0]),
        int(stats[1]),
        smooth_method="exp",
        max_ngram_order=order,
    )
    return float(score.score)


def _per_segment(references: list[str], hypotheses: list[str]) -> dict[str, np.ndarray]:
    """Per-segment statistics of one condition: BLEU stats, ROUGE-L F1, edits, reference words."""
    import jiwer
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = np.array(
        [scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(references, hypotheses)]
    )
    edits = np.zeros(len(references))
    words = np.zeros(len(references))
    for k, (ref, hyp) in enumerate(zip(references, hypotheses)):
        out = jiwer.process_words(ref, hyp)
        edits[k] = out.substitutions + out.deletions + out.insertions
        words[k] = out.substitutions + out.deletions + out.hits
    return {
        "bleu": _bleu_statistics(references, hypotheses),
        "rouge_l": rouge,
        "edits": edits,
        "words": words,
    }


def _metric_values(stats: dict[str, np.ndarray], index: np.ndarray | None) -> dict[str, Any]:
    """Every metric over all segments (``index`` None, floats) or per resample (R,) arrays."""
    if index is None:
        bleu = stats["bleu"].sum(axis=0)
        out = {f"bleu{n}": _bleu(bleu, n) for n in range(1, 5)}
        out["rouge_l"] = 100.0 * float(stats["rouge_l"].mean())
        out["wer"] = 100.0 * float(stats["edits"].sum() / stats["words"].sum())
        return out
    bleu = stats["bleu"][index].sum(axis=1)  # (R, 10)
    out = {f"bleu{n}": np.array([_bleu(row, n) for row in bleu]) for n in range(1, 5)}
    out["rouge_l"] = 100.0 * stats["rouge_l"][index].mean(axis=1)
    out["wer"] = 100.0 * stats["edits"][index].sum(axis=1) / stats["words"][index].sum(axis=1)
    return out


def _interval(samples: np.ndarray, value: float, level: float) -> dict[str, float]:
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return {"value": float(value), "low": float(low), "high": float(high)}


def _bertscore(
    references: list[str],
    hypotheses: dict[str, list[str]],
    model: str | None,
) -> dict[str, np.ndarray] | str:
    """Per-segment BERTScore F1 of each condition, or the reason it is not computed."""
    if model is None:
        return "no local scoring model given (bertscore_model)"
    try:
        from bert_score import BERTScorer
    except ImportError:
        return "bert-score is not installed (pip install bert-score)"
    path = Path(model)
    if not path.exists():
        return f"the scoring model {model!r} does not exist"
    import json

    config = path / "config.json"
    layers = json.loads(config.read_text()).get("num_hidden_layers") if config.is_file() else None
    scorer = BERTScorer(model_type=str(path), num_layers=layers, lang="en")
    return {
        name: scorer.score(hyps, references)[2].numpy().astype(np.float64)
        for name, hyps in hypotheses.items()
    }


def score_text(
    references: Sequence[str],
    hypotheses: dict[str, Sequence[str]],
    *,
    model_key: str = "meg",
    controls: Sequence[str] = ("noise", "shuffled", "no_meg"),
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    normalize: bool = True,
    bertscore_model: str | None = None,
) -> dict[str, Any]:
    """Score free-running hypotheses of the model and of its controls against references.

    Parameters
    ----------
    references : sequence of str
        The text of each segment (non-empty).
    hypotheses : dict of str to sequence of str
        Generated text per segment for ``model_key`` and for every control, in the order of
        ``references``; no other keys.
    model_key : str
        The condition with the real signal.
    controls : sequence of str
        Control conditions (see :data:`CONTROLS`), at least one.
    n_boot : int
        Bootstrap resamples of the segments.
    seed : int
        Seed of the resamples.
    level : float
        Coverage of the intervals.
    normalize : bool
        Lower-case and strip punctuation from references and hypotheses alike before scoring.
    bertscore_model : str, optional
        A local model folder for BERTScore (needs ``bert-score``).

    Returns
    -------
    dict
        ``metrics``: per metric ``higher_is_better``, ``unit``, ``scores`` (per condition
        ``{value, low, high}``), ``differences`` (model minus each control, in the metric's
        better direction, ``{value, low, high}``) and ``margin`` over the best control
        (``best_control``, ``value``, ``low``, ``high``: each resample's margin is taken over
        the best control of that resample; ``beats_all_controls``: ``low > 0``).
        ``bertscore`` is ``{"computed": False, "reason": ...}`` when not computed.
        ``beats_all_controls``: every computed metric's verdict. ``n_segments``, ``model``,
        ``controls`` (with what they feed), ``generation`` and ``settings`` describe the run.

    Raises
    ------
    ValueError
        Missing or extra conditions, a hypothesis list of the wrong length, an empty reference.
    """
    controls = list(controls)
    if not controls or model_key in controls:
        raise ValueError(
            f"score_text: need at least one control other than {model_key!r}, got {controls}"
        )
    wanted = [model_key, *controls]
    missing = [k for k in wanted if k not in hypotheses]
    extra = sorted(set(hypotheses) - set(wanted))
    if missing or extra:
        raise ValueError(
            f"score_text: hypotheses need exactly the conditions {wanted}; missing {missing}, "
            f"unexpected {extra} (teacher-forced or other numbers are not scored here)"
        )
    refs = [normalize_text(r) if normalize else str(r) for r in references]
    empty = [k for k, r in enumerate(refs) if not r.strip()]
    if not refs or empty:
        raise ValueError(f"score_text: {len(refs)} references, empty ones at segments {empty[:10]}")
    hyps = {}
    for name in wanted:
        if len(hypotheses[name]) != len(refs):
            raise ValueError(
                f"score_text: {len(hypotheses[name])} hypotheses for {name!r} but {len(refs)} "
                "references"
            )
        hyps[name] = [normalize_text(h) if normalize else str(h) for h in hypotheses[name]]
    index = block_resamples(len(refs), n_boot, 1, seed)  # (R, M), independent segments
    stats = {name: _per_segment(refs, hyps[name]) for name in wanted}
    values = {name: _metric_values(s, None) for name, s in stats.items()}
    samples = {name: _metric_values(s, index) for name, s in stats.items()}
    bert = _bertscore(refs, hyps, bertscore_model)
    metrics_names = list(METRICS)
    if isinstance(bert, dict):
        for name in wanted:
            values[name]["bertscore"] = float(bert[name].mean())
            samples[name]["bertscore"] = bert[name][index].mean(axis=1)
        metrics_names.append("bertscore")
    metrics = {
        metric: _compare(metric, values, samples, model_key, controls, level)
        for metric in metrics_names
    }
    if not isinstance(bert, dict):
        metrics["bertscore"] = {"computed": False, "reason": bert}
    computed = [m for m in metrics.values() if m.get("computed", True)]
    return {
        "n_segments": len(refs),
        "model": model_key,
        "controls": {c: CONTROLS.get(c, "a control given by the caller") for c in controls},
        "generation": "free-running (no teacher forcing)",
        "metrics": metrics,
        "beats_all_controls": all(m["margin"]["beats_all_controls"] for m in computed),
        "settings": {
            "n_boot": int(n_boot),
            "seed": int(seed),
            "level": float(level),
            "normalize": bool(normalize),
            "bleu": "sacrebleu corpus BLEU, tokenize 13a, smooth exp",
            "interval": "percentile bootstrap over segments, paired across conditions",
        },
    }


def _compare(
    metric: str,
    values: dict[str, dict[str, Any]],
    samples: dict[str, dict[str, Any]],
    model_key: str,
    controls: list[str],
    level: float,
) -> dict[str, Any]:
    """Scores of every condition, paired differences and the margin over the best control."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    scores = {
        name: _interval(samples[name][metric], values[name][metric], level) for name in values
    }
    model_value, model_samples = values[model_key][metric], samples[model_key][metric]
    differences = {
        c: _interval(
            sign * (model_samples - samples[c][metric]),
            sign * (model_value - values[c][metric]),
            level,
        )
        for c in controls
    }
    best = max(controls, key=lambda c: sign * values[c][metric])
    best_samples = np.max([sign * samples[c][metric] for c in controls], axis=0)
    margin = _interval(
        sign * model_samples - best_samples,
        sign * model_value - sign * values[best][metric],
        level,
    )
    return {
        "computed": True,
        "higher_is_better": sign > 0,
        "unit": "F1" if metric == "bertscore" else "%",
        "scores": scores,
        "differences": differences,
        "margin": {"best_control": best, **margin, "beats_all_controls": margin["low"] > 0},
    }


def format_text_report(result: dict[str, Any]) -> str:
    """A markdown table of :func:`score_text`'s result: each condition with its interval, the
    margin over the best control and the verdict."""
    model, controls = result["model"], list(result["controls"])
    settings = result["settings"]
    lines = [
        f"Text scores, {result['generation']}, {result['n_segments']} segments; "
        f"{100 * settings['level']:g}% intervals: {settings['interval']} "
        f"({settings['n_boot']} resamples).",
        "",
        "| metric | " + " | ".join([model, *controls]) + " | margin over best control | beats |",
        "|---" * (len(controls) + 4) + "|",
    ]
    for name, metric in result["metrics"].items():
        if not metric.get("computed", True):
            lines.append(
                f"| {name} | not computed: {metric['reason']} |" + " |" * (len(controls) + 2)
            )
            continue
        arrow = "↑" if metric["higher_is_better"] else "↓"
        cells = [_cell(metric["scores"][c]) for c in [model, *controls]]
        margin = metric["margin"]
        lines.append(
            f"| {name} {arrow} | "
            + " | ".join(cells)
            + f" | {_cell(margin, signed=True)} vs {margin['best_control']} | "
            + ("yes" if margin["beats_all_controls"] else "no")
            + " |"
        )
    verdict = "beats" if result["beats_all_controls"] else "does not beat"
    lines += ["", f"The model {verdict} every control on every computed metric."]
    lines += [f"- {c}: {what}" for c, what in result["controls"].items()]
    return "\n".join(lines) + "\n"


def _cell(interval: dict[str, float], signed: bool = False) -> str:
    fmt = "{:+.2f}" if signed else "{:.2f}"
    return (
        f"{fmt.format(interval['value'])} "
        f"[{fmt.format(interval['low'])}, {fmt.format(interval['high'])}]"
    )
