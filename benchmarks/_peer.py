"""The real braindecode as a benchmark peer, driven by subprocess in its own environment.

braindecode imports torchaudio, which has no build for the torch of neurofm's environment, so the
peer runs in the benchmark environment ``.venv-bench`` (``make bench-env``, pinned in
``benchmarks/requirements-bench.txt``; another interpreter can be named with the environment
variable ``NEUROFM_BENCH_PYTHON``). Its side of every benchmark lives in
:mod:`benchmarks.braindecode_peer`, which imports numpy, torch, MNE and braindecode but never
neurofm. Two ways to call it:

- :func:`run_peer`: one command, one JSON answer (decoding folds, latency);
- :class:`PeerServer`: a long-lived worker answering one JSON line per request, so that its
  timings can be interleaved with ours in the same loop (P1).

When the environment is missing or braindecode does not import there, :func:`find_peer` returns
the reason, and the benchmarks write it to their JSON instead of the peer's numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
MODULE = "benchmarks.braindecode_peer"


def bench_python() -> Path:
    """The benchmark environment's interpreter: ``$NEUROFM_BENCH_PYTHON`` or ``.venv-bench``."""
    return Path(os.environ.get("NEUROFM_BENCH_PYTHON", DEFAULT_PYTHON))


def find_peer(timeout: float = 300.0) -> tuple[Path | None, dict[str, Any]]:
    """The interpreter that imports braindecode, and its versions; or None and the reason.

    Returns
    -------
    python : Path or None
        None when the peer cannot run.
    info : dict
        ``versions`` (braindecode, torch, torchaudio, mne, numpy) when it runs, else ``reason``.
    """
    python = bench_python()
    if not python.exists():
        shown = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
        return None, {
            "reason": f"no benchmark environment: {shown} is absent (build it with "
            "`make bench-env`)"
        }
    try:
        info = run_peer(["versions"], python=python, timeout=timeout)
    except (subprocess.SubprocessError, OSError, ValueError) as err:
        return None, {"reason": f"braindecode does not run in the benchmark environment: {err}"}
    return python, {"versions": info}


def _last_json_line(text: str, what: str) -> Any:
    lines = [line for line in text.strip().splitlines() if line.startswith(("{", "["))]
    if not lines:
        raise ValueError(f"{what}: no JSON line in the peer's output {text[-500:]!r}")
    return json.loads(lines[-1])


def run_peer(args: list[str], *, python: Path | None = None, timeout: float = 1800.0) -> Any:
    """Run ``python -m benchmarks.braindecode_peer ARGS`` in the benchmark environment and return
    the JSON of its last output line; raises ``subprocess.CalledProcessError`` (with its stderr)
    when it fails."""
    python = python or bench_python()
    try:
        out = subprocess.run(
            [str(python), "-m", MODULE, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        )
    except subprocess.CalledProcessError as err:
        tail = (err.stderr or "").strip().splitlines()[-5:]
        raise subprocess.CalledProcessError(
            err.returncode, err.cmd, err.output, "\n".join(tail)
        ) from None
    return _last_json_line(out.stdout, f"braindecode_peer {args[:1]}")


class PeerServer:
    """A braindecode worker in the benchmark environment answering JSON requests line by line.

    Each :meth:`call` writes one JSON request to the worker's stdin and reads one JSON answer
    from its stdout (a round trip of well under a millisecond). Use as a context manager.
    """

    def __init__(self, python: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [str(python or bench_python()), "-m", MODULE, "serve"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def call(self, request: dict[str, Any]) -> Any:
        """Send ``request`` and return the worker's answer; raises RuntimeError on its error."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"braindecode worker exited (code {self.proc.wait()}) on {request}")
        answer = json.loads(line)
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(
                f"braindecode worker, request {request.get('op')}: {answer['error']}"
            )
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> PeerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
