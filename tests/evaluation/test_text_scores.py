"""Text scores with controls: known cases, paired intervals, the margin over the best control."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sacrebleu")
pytest.importorskip("jiwer")
pytest.importorskip("rouge_score")

from neurofm.evaluation.text_scores import format_text_report, score_text  # noqa: E402

VOCAB = "the a cat dog sat on mat ran to house tree big small red blue old".split()


def _corpus(n: int = 40, seed: int = 0) -> tuple[list[str], dict[str, list[str]]]:
    rng = np.random.default_rng(seed)
    refs = [" ".join(rng.choice(VOCAB, 7)) for _ in range(n)]

    def corrupt(text: str, p: float) -> str:
        return " ".join(w if rng.random() > p else str(rng.choice(VOCAB)) for w in text.split())

    return refs, {
        "meg": [corrupt(r, 0.3) for r in refs],
        "noise": [corrupt(r, 1.0) for r in refs],
        "shuffled": refs[1:] + refs[:1],
        "no_meg": ["the cat sat on the mat"] * n,
    }


def test_identical_hypotheses_score_perfectly_and_match_sacrebleu():
    from sacrebleu.metrics import BLEU

    refs, hyps = _corpus()
    perfect = score_text(refs, {**hyps, "meg": refs}, n_boot=100)
    metrics = perfect["metrics"]
    assert metrics["bleu4"]["scores"]["meg"]["value"] == pytest.approx(100.0)
    assert metrics["wer"]["scores"]["meg"]["value"] == 0.0
    assert metrics["rouge_l"]["scores"]["meg"]["value"] == pytest.approx(100.0)
    result = score_text(refs, hyps, n_boot=100, normalize=False)
    for order in range(1, 5):
        expected = BLEU(max_ngram_order=order).corpus_score(hyps["meg"], [refs]).score
        assert result["metrics"][f"bleu{order}"]["scores"]["meg"]["value"] == pytest.approx(
            expected
        )


def test_the_model_beats_controls_and_intervals_hold_the_estimate():
    refs, hyps = _corpus()
    result = score_text(refs, hyps, n_boot=200, seed=1)
    assert result["beats_all_controls"] and result["generation"].startswith("free-running")
    for name, metric in result["metrics"].items():
        if not metric["computed"]:
            continue
        for interval in [*metric["scores"].values(), metric["margin"]]:
            assert interval["low"] <= interval["value"] <= interval["high"], name
    wer = result["metrics"]["wer"]
    assert not wer["higher_is_better"] and wer["margin"]["value"] > 0  # fewer errors: positive
    assert score_text(refs, hyps, n_boot=200, seed=1) == result  # deterministic


def test_a_control_equal_to_the_references_is_not_beaten():
    refs, hyps = _corpus()
    result = score_text(refs, {**hyps, "no_meg": refs}, n_boot=100)
    assert not result["beats_all_controls"]
    bleu = result["metrics"]["bleu4"]["margin"]
    assert bleu["best_control"] == "no_meg" and bleu["value"] < 0
    assert not bleu["beats_all_controls"]
    assert "does not beat" in format_text_report(result)


def test_resampling_is_paired_across_conditions():
    refs, hyps = _corpus()
    result = score_text(refs, {**hyps, "shuffled": hyps["meg"]}, n_boot=100)
    for metric in ("bleu4", "rouge_l", "wer"):
        same = result["metrics"][metric]["differences"]["shuffled"]
        assert same == {"value": 0.0, "low": 0.0, "high": 0.0}
        assert not result["metrics"][metric]["margin"]["beats_all_controls"]


def test_bad_conditions_and_bertscore_without_a_model():
    refs, hyps = _corpus(n=5)
    with pytest.raises(ValueError, match=r"missing \['no_meg'\]"):
        score_text(refs, {k: v for k, v in hyps.items() if k != "no_meg"}, n_boot=10)
    with pytest.raises(ValueError, match="teacher_forced"):
        score_text(refs, {**hyps, "teacher_forced": refs}, n_boot=10)
    with pytest.raises(ValueError, match="4 hypotheses for 'meg'"):
        score_text(refs, {**hyps, "meg": hyps["meg"][:4]}, n_boot=10)
    with pytest.raises(ValueError, match="empty ones at segments \\[0\\]"):
        score_text(["", *refs[1:]], hyps, n_boot=10)
    result = score_text(refs, hyps, n_boot=10)
    assert result["metrics"]["bertscore"] == {
        "computed": False,
        "reason": "no local scoring model given (bertscore_model)",
    }
    report = format_text_report(result)
    assert "| bleu4" in report and "not computed" in report and "vs " in report


def test_control_inputs():
    import torch

    from neurofm.evaluation.text_controls import noise_like, shuffled_partners

    texts = ["a b"] * 5 + ["c d"] * 3 + ["e"] * 2
    for seed in range(5):
        partners = shuffled_partners(texts, seed=seed)
        assert sorted(partners.tolist()) == list(range(10))
        assert all(texts[p] != t for p, t in zip(partners, texts))
    assert (shuffled_partners(texts, seed=1) == shuffled_partners(texts, seed=1)).all()
    with pytest.raises(ValueError, match="most common key held by 6"):
        shuffled_partners(["a"] * 6 + ["b"] * 4)
    x = torch.randn(3, 4, 200) * 5 + 2
    noise = noise_like(x, seed=0)
    assert noise.shape == x.shape and noise.dtype == x.dtype
    torch.testing.assert_close(noise.mean(-1), x.mean(-1), atol=1.5, rtol=0)
    assert torch.equal(noise, noise_like(x, seed=0)) and not torch.equal(noise, x)
    assert noise_like(x.numpy(), seed=0).shape == (3, 4, 200)


def test_unknown_reference_words_count_as_missed():
    pytest.importorskip("tokenizers")
    from neurofm.evaluation.meg_text import UNKNOWN_WORD, reference_text
    from neurofm.tokenizers.text_vocab import WordVocabulary

    vocab = WordVocabulary.build(["the cat sat", "a cat"], vocab_size=32)
    assert reference_text(vocab, "the cat sat") == "the cat sat"
    assert reference_text(vocab, "the dog sat") == f"the {UNKNOWN_WORD} sat"
    assert reference_text(vocab, "dog bird") == f"{UNKNOWN_WORD} {UNKNOWN_WORD}"
    assert reference_text(vocab, "big dog cat") == f"{UNKNOWN_WORD} {UNKNOWN_WORD} cat"
    # a hypothesis that says every known word still misses the unknown one
    said = ["the cat sat"]
    controls = {"noise": ["a"], "shuffled": ["a"], "no_meg": ["a"]}
    scores = score_text(
        [reference_text(vocab, "the dog sat")], {"meg": said, **controls}, n_boot=10
    )
    assert scores["metrics"]["wer"]["scores"]["meg"]["value"] == pytest.approx(100 / 3)
