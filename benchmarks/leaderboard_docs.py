"""Write ``docs/results/leaderboard.{md,json}`` (and the table of ``docs/evaluation.md``) from one or more ``neurofm benchmark`` folders.

Runs of the same settings (store, preset, steps, seed, evaluation) over different families are
merged: every family row of every folder (a family scored in a later folder replaces an earlier
row of it), and the baselines of the first folder that has them. Folder names are replaced by
``<output>`` so that the committed files name no machine's paths.

Run: ``python -m benchmarks.leaderboard_docs BENCH_DIR [BENCH_DIR ...]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from neurofm.workflows.leaderboard import markdown_table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results"
EVALUATION_DOC = DOCS.parent / "evaluation.md"
START, END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


def _strip(value: Any, folder: str) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(v, folder) for v in value]
    if isinstance(value, str):
        return value.replace(folder, "<output>")
    return value


def merge(folders: list[Path]) -> dict[str, Any]:
    """One board of the family rows of ``folders`` and the first baselines found."""
    families: dict[str, dict[str, Any]] = {}
    baselines: list[dict[str, Any]] = []
    board: dict[str, Any] = {}
    for folder in folders:
        one = _strip(json.loads((folder / "benchmark.json").read_text()), str(folder))
        for row in one["rows"]:
            if row["kind"] != "baseline" and (row["status"] == "ok" or row["name"] not in families):
                families[row["name"]] = row
        if not baselines and one.get("baselines_from"):
            baselines = [r for r in one["rows"] if r["kind"] == "baseline"]
            board = {"baselines_from": one["baselines_from"], "settings": one["settings"]}
        board.setdefault("settings", one["settings"])
    board["settings"]["store"] = "the shipped EEG sample (prepared by neurofm benchmark)"
    return {"rows": list(families.values()) + baselines, **board}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args(argv)
    board = merge(args.folders)
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "leaderboard.json").write_text(json.dumps(board, indent=1, default=str) + "\n")
    (DOCS / "leaderboard.md").write_text(markdown_table(board))
    text = EVALUATION_DOC.read_text()
    if START in text:  # the table (without its title) between the markers of docs/evaluation.md
        table = markdown_table(board).split("\n", 2)[2].strip()
        head, rest = text.split(START, 1)
        EVALUATION_DOC.write_text(f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}")
    print(markdown_table(board))
    return 0


if __name__ == "__main__":
    sys.exit(main())
