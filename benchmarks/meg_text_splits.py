"""MEG-to-text honesty by split: a held-out subject vs a held-out passage (unseen text).

On the MEG-MASC-like tree of ``neurofm synth-masc`` (the real word onsets of story ``lw1``, 3
subjects, 8 channels at 100 Hz, SNR 2, 3-word segments of 2.4 s), a tiny ``meg_text`` model is
trained ``--steps`` steps (batch 16, AdamW lr 3e-3, MEG dropout 0.2, seed 0) and decoded
free-running with the three controls (noise, shuffled MEG, no MEG), for

- ``subject``: one subject held out; every subject heard the same story, so the test texts were
  heard in training (by the other subjects);
- ``passage``: passage ``lw1/1`` (the story's second sound file) held out for every subject; no
  test segment's words were heard in that order in training (the story's characters and common
  words were).

each on the decodable tree and on its unrelated twin (``--twins decodable unrelated``). Writes
``docs/results/meg_text_splits.json``. Run: ``python -m benchmarks.meg_text_splits [--steps 600]
[--splits subject passage] [--twins decodable unrelated]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from benchmarks._common import machine_info

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT.parent / "shared" / "data" / "meg_masc_events"
OUT = ROOT / "docs" / "results" / "meg_text_splits.json"


def run_one(root: Path, by: str, steps: int, batch_size: int = 16) -> dict[str, Any]:
    """Train a tiny ``meg_text`` on one split of the tree at ``root`` and score it with controls."""
    from neurofm.data.text_segments import (
        TextSegmentDataset,
        collate_text_segments,
        read_text_segments,
        split_segments,
    )
    from neurofm.evaluation.common import EvaluateConfig
    from neurofm.evaluation.meg_text import evaluate_meg_text
    from neurofm.registry import MODELS, OBJECTIVES, create
    from neurofm.tokenizers.text_vocab import WordVocabulary
    from neurofm.training.text_data import TextIds

    segments = read_text_segments(
        root, mode="words", words_per_segment=3, window_seconds=2.4, drop_incomplete=True
    )
    passages = sorted({s.passage for s in segments})
    test: Any = 1 if by == "subject" else [p for p in passages if p.endswith("/1")]
    splits = split_segments(segments, by=by, val=0, test=test)
    vocab = WordVocabulary.build([s.text for s in splits["train"]], vocab_size=256)
    torch.manual_seed(0)
    model = create(MODELS, {"name": "meg_text", "preset": "tiny", "n_chans": 8, "vocab_size": 256})
    objective = create(OBJECTIVES, {"name": "meg_text", "meg_dropout": 0.2})
    train = TextSegmentDataset(splits["train"], tokenizer=TextIds(vocab))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.0)
    draw = torch.Generator().manual_seed(0)
    model.train()
    objective.train()
    start = time.perf_counter()
    for _ in range(steps):
        items = torch.randint(0, len(train), (batch_size,), generator=draw).tolist()
        batch = collate_text_segments([train[i] for i in items], pad_id=vocab.pad_id)
        optimizer.zero_grad()
        objective(model, batch).loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    held = TextSegmentDataset(splits["test"], tokenizer=TextIds(vocab))
    batch = collate_text_segments([held[i] for i in range(len(held))], pad_id=vocab.pad_id)
    config = EvaluateConfig(n_bootstrap=200, text_max_new_tokens=8, batch_size=64)
    report = evaluate_meg_text(model, batch, vocab, config)
    metrics = report["text_scores"]["metrics"]
    return {
        "split": by,
        "test_groups": test,
        "passages": passages,
        "n_train": len(splits["train"]),
        "n_test": len(splits["test"]),
        "train_seconds": round(seconds, 1),
        "references_unknown_words": report["references_unknown_words"],
        "margins": {name: metrics[name]["margin"] for name in ("bleu1", "rouge_l", "wer")},
        "beats_all_controls": report["text_scores"]["beats_all_controls"],
        "markdown": report["markdown"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--splits", nargs="+", default=["subject", "passage"])
    parser.add_argument("--twins", nargs="+", default=["decodable", "unrelated"])
    parser.add_argument("--events", type=Path, default=EVENTS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not args.events.is_dir():
        print(f"{args.events}: no MEG-MASC events folder", file=sys.stderr)
        return 2
    from neurofm.data.synthetic_masc import make_masc_like

    result: dict[str, Any] = {"steps": args.steps, "machine": machine_info(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for twin in args.twins:
            root = make_masc_like(
                Path(tmp) / twin,
                events_root=args.events,
                n_subjects=3,
                sfreq=100.0,
                n_channels=8,
                snr=2.0,
                related=twin == "decodable",
                seed=0,
                stories=["lw1"],
            )
            for by in args.splits:
                run = run_one(root, by, args.steps)
                result["runs"][f"{twin}/{by}"] = run
                print(f"## {twin}, held-out {by}\n\n{run['markdown']}", flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
