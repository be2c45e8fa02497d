"""``neurofm decode``: leave-one-run-out decoding of labelled EEGBCI runs (reference decoders and
a neurofm classifier in the same folds)."""

from __future__ import annotations

from typing import Optional


def decode(
    folder: str,
    runs: Optional[list[int]] = None,
    window: Optional[list[float]] = None,
    model: Optional[str] = "classifier_continuous",
    preset: str = "small",
    backbone: Optional[str] = None,
    finetune: str = "frozen",
    epochs: int = 15,
    n_permutations: int = 1000,
    seed: int = 0,
    output: Optional[str] = None,
) -> None:
    """Decode left vs right fist (T1 vs T2) with leave-one-run-out cross-validation.

    Reads the EDF runs ``S###R##.edf`` of ``folder`` (e.g. PhysioNet EEGBCI subject S001),
    preprocesses them as the ``eegbci`` recipe does, cuts one window per T1 / T2 event and scores
    band-power LDA, CSP + LDA and a neurofm classifier trained per fold on the other runs:
    accuracy with an exact binomial 95% interval and a label-permutation p-value. Writes
    ``decoding.json`` to ``output`` when given.

    Args:
        folder: folder holding the EEGBCI EDF files (searched recursively).
        runs: run numbers, one fold each (default 3 4 7 8 11 12: left vs right fist, executed
            and imagined).
        window: start and end of each window in s after the event onset (default 0 4).
        model: registered classifier trained in each fold; ``none`` leaves it out.
        preset: preset of that classifier.
        backbone: run folder of a pretrained forecaster (``neurofm fit``) for
            ``--model backbone_classifier``: its trunk, with its tokenizer, under a linear head.
        finetune: with a backbone: ``frozen`` (the head alone learns), ``lora`` (adapters
            through peft) or ``full``.
        epochs: training epochs of the classifier per fold.
        n_permutations: label permutations of the p-values.
        seed: seed of the permutations and of the classifier's training.
        output: folder for ``decoding.json``.
    """
    import json
    from pathlib import Path

    from neurofm.evaluation.decoding_runs import EEGBCI_LEFT_RIGHT_RUNS, cross_validate_runs

    report = cross_validate_runs(
        folder,
        runs=tuple(runs or EEGBCI_LEFT_RIGHT_RUNS),
        window=tuple(window or (0.0, 4.0)),
        model=_model_section(model, preset, backbone, finetune),
        epochs=epochs,
        n_permutations=n_permutations,
        seed=seed,
    )
    print(
        f"{report['n_windows']} windows of runs {report['runs']}, leave one run out, "
        f"{report['n_permutations']} permutations"
    )
    for name, scores in report["decoders"].items():
        low, high = scores["accuracy_95ci"]
        print(
            f"{name:15s} accuracy {scores['accuracy']:.3f} [{low:.3f}, {high:.3f}]"
            f"  p {scores['p_value']:.4f}  ({scores['p_value_method']})"
        )
    if output is not None:
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "decoding.json").write_text(json.dumps(report, indent=2))
        print(f"report: {out / 'decoding.json'}")


def _model_section(
    model: Optional[str], preset: str, backbone: Optional[str], finetune: str
) -> dict:
    """The classifier section of :func:`decode`; a backbone needs ``backbone_classifier``."""
    if model in (None, "none"):
        return {}
    section = {"name": model, "preset": preset}
    if model == "backbone_classifier":
        section["finetune"] = finetune
        if backbone is not None:
            section["backbone"] = backbone
    elif backbone is not None:
        raise ValueError(f"--backbone is read by --model backbone_classifier, not {model!r}")
    return section
