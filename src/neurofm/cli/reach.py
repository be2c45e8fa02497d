"""``neurofm reach`` and ``neurofm fewshot``: NeuroFM-X on binned spike counts with a behaviour
variable (a monkey reach ``.mat``), against ridge / Wiener-filter and Poisson-GLM baselines."""

from __future__ import annotations

from typing import Optional


def _threads(threads: Optional[int]) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def reach(
    file: str,
    steps: int = 400,
    window: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    threads: Optional[int] = None,
    output: Optional[str] = None,
) -> None:
    """Behaviour R² on the held-out test bins and co-smoothing bits per spike.

    Trains a ``neurofm_x`` model (multi-task) on the train part of ``file`` and scores hand
    velocity R² (block-bootstrap 95% intervals) next to ridge and Wiener-filter regressions on
    the same bins, and the held-out units' rates in bits per spike next to a smoothed-spikes
    Poisson GLM. Writes ``reach.json`` to ``output`` when given.

    Args:
        file: ``.mat`` file with ``Ytr``/``Yte`` counts and ``Xtr``/``Xte`` velocities.
        steps: optimizer steps.
        window: bins per training window.
        lr: AdamW learning rate.
        seed: seed of the model, the windows and the held-out units.
        threads: torch CPU threads (1 is often fastest for these small models on a busy CPU).
        output: folder for ``reach.json``.
    """
    import json
    from pathlib import Path

    from neurofm.workflows.reach import ReachConfig, reach_decoding

    _threads(threads)
    report = reach_decoding(file, ReachConfig(steps=steps, window=window, lr=lr, seed=seed))
    for name, row in report["results"].items():
        low, high = row["r2_ci95"]
        print(f"{name:20s} R² {row['r2']:.3f} [{low:.3f}, {high:.3f}]")
    for name, value in report["cosmoothing_bits_per_spike"].items():
        print(f"co-smoothing {name}: {value:.4g}")
    if output is not None:
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "reach.json").write_text(json.dumps(report, indent=2))
        print(f"report: {out / 'reach.json'}")


def fewshot(
    file: str,
    scenario: str = "auto",
    fractions: Optional[list[float]] = None,
    pretrain_steps: int = 300,
    adapt_steps: int = 150,
    seed: int = 0,
    threads: Optional[int] = None,
    output: Optional[str] = None,
) -> None:
    """Few-shot transfer: Unit-ID adapter vs training from scratch vs ridge / Wiener filter.

    Pretrains on a source (one half of the units, or the train part), then fits every method on
    the first 1%, 10%, 100% of the calibration bins and scores behaviour R² on the same test
    bins. Writes ``fewshot.json`` and the curve ``fewshot.png`` to ``output`` when given.

    Args:
        file: ``.mat`` reach file (parts ``tr`` and ``te``).
        scenario: auto, held_out_units, later_block or new_session.
        fractions: parts of the calibration bins (default 0.01 0.1 1).
        pretrain_steps: optimizer steps of the source model.
        adapt_steps: optimizer steps of the adapter and of the model from scratch.
        seed: seed of the models, windows and unit split.
        threads: torch CPU threads.
        output: folder for ``fewshot.json`` and ``fewshot.png``.
    """
    from neurofm.workflows.fewshot import FewShotConfig, few_shot_transfer
    from neurofm.workflows.reach import ReachConfig

    _threads(threads)
    config = FewShotConfig(
        scenario=scenario,
        fractions=tuple(fractions or (0.01, 0.1, 1.0)),
        pretrain_steps=pretrain_steps,
        adapt_steps=adapt_steps,
        reach=ReachConfig(seed=seed),
    )
    report = few_shot_transfer(file, config, output=output)
    print(f"{report['file']}: {report['scenario']}, units {report['units']}")
    for name, rows in report["results"].items():
        cells = "  ".join(
            f"{r['fraction']:g} ({r['calibration_bins']} bins): {r['r2']:.3f} "
            f"[{r['r2_ci95'][0]:.3f}, {r['r2_ci95'][1]:.3f}]"
            for r in rows
        )
        print(f"{name:20s} {cells}")
