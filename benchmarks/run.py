"""Run every benchmark: ``python -m benchmarks.run --size smoke``.

Discovers ``benchmarks/P*.py`` (and ``R*.py``) modules, calls their ``run(size)``, keeps going
when one fails, and prints a summary (speedup vs target per benchmark).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(only: list[str] | None = None) -> list[str]:
    """Module names ``benchmarks.<stem>`` of the benchmark files, sorted by id."""
    stems = sorted(p.stem for p in HERE.glob("[PR][0-9]*_*.py"))
    if only:
        stems = [s for s in stems if s.split("_", 1)[0] in only]
    return [f"benchmarks.{s}" for s in stems]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="smoke", choices=("smoke", "full"))
    parser.add_argument("--only", nargs="*", help="benchmark ids to run, e.g. P1 P4")
    args = parser.parse_args(argv)
    rows = []
    for name in discover(args.only):
        start = time.perf_counter()
        try:
            result = importlib.import_module(name).run(args.size)
            status = "ok"
        except Exception:  # a failing benchmark must not stop the others
            traceback.print_exc()
            result, status = {}, "FAILED"
        rows.append((name.split(".")[-1], status, result, time.perf_counter() - start))
    print(f"\n{'benchmark':<28} {'status':<7} {'speedup':>9} {'target':>8} {'seconds':>8}")
    for stem, status, result, seconds in rows:
        sp = result.get("speedup") if isinstance(result, dict) else None
        tg = result.get("target") if isinstance(result, dict) else None
        sp_s = f"{sp:.2f}" if isinstance(sp, (int, float)) else "-"
        tg_s = f"{tg}" if isinstance(tg, (int, float, str)) else "-"
        print(f"{stem:<28} {status:<7} {sp_s:>9} {tg_s:>8} {seconds:>8.1f}")
    return 1 if any(status != "ok" for _, status, _, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
