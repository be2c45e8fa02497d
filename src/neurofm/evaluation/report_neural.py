"""HTML sections of the reports of NeuroFM-X runs: binned counts (co-smoothing, behaviour),
spike events (behaviour) and field potentials (band power). ``table`` is the report's table
builder, ``table(title, columns, rows)``."""

from __future__ import annotations

from typing import Any


def cosmoothing_sections(report: dict[str, Any], table: Any) -> list[str]:
    """HTML tables of a binned-count (co-smoothing) report (``table(title, columns, rows)``)."""
    bps = report["bits_per_spike"]
    out = [
        table(
            f"Co-smoothing, bits per spike ({len(report['held_out_units'])} held-out units, "
            f"{report['n_windows']} windows; higher is better)",
            list(bps),
            [("bits / spike", list(bps.values()))],
        )
    ]
    r2 = report.get("behaviour_r2")
    if r2:
        out.append(
            table(
                "Behaviour decoding R² (95% block-bootstrap interval)",
                list(r2),
                [
                    ("R²", [v["r2"] for v in r2.values()]),
                    (
                        "interval",
                        [" .. ".join(f"{b:.3f}" for b in v["r2_ci95"]) for v in r2.values()],
                    ),
                ],
            )
        )
    return out


def report_sections(report: dict[str, Any], table: Any) -> list[str]:
    """HTML tables of a spike-event or band-power report (``table(title, columns, rows)``)."""
    out = []
    r2 = report.get("behaviour_r2")
    if r2:
        names = list(r2)
        out.append(
            table(
                f"Behaviour R² on the held-out block ({report['test_bins']} bins; 95% interval)",
                names,
                [
                    ("R² / difference", [v.get("r2", v.get("mean")) for v in r2.values()]),
                    (
                        "interval",
                        [
                            " .. ".join(f"{b:.3f}" for b in v.get("r2_ci95", v.get("ci95")))
                            for v in r2.values()
                        ],
                    ),
                ],
            )
        )
    bps = report.get("bits_per_spike")
    if bps:
        names = [k for k in bps if k != "held_out_units"]
        out.append(
            table(
                "Co-smoothing, bits per spike", names, [("bits / spike", [bps[k] for k in names])]
            )
        )
    mse = report.get("band_power_mse")
    if mse:
        scores, diffs = mse["scores"], mse["differences"]
        out.append(
            table(
                f"Log band-power MSE ({mse['n_windows']} steps; lower is better)",
                [*scores, *(f"model - {k}" for k in diffs)],
                [
                    ("mean", [v["mean"] for v in (*scores.values(), *diffs.values())]),
                    (
                        "interval",
                        [
                            f"{v['low']:.3f} .. {v['high']:.3f}"
                            for v in (*scores.values(), *diffs.values())
                        ],
                    ),
                ],
            )
        )
    return out
