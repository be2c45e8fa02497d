"""Run ``neurofm fit`` in a fresh process, optionally SIGKILLing itself right after a checkpoint.

Usage: ``python _fit_process.py [--kill-after-step K] fit --config run.yaml [...]``.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    kill_step = None
    if argv and argv[0] == "--kill-after-step":
        kill_step, argv = int(argv[1]), argv[2:]
    import torch

    torch.set_num_threads(1)
    if kill_step is not None:
        from neurofm.training import callbacks

        original = callbacks.StepCheckpoint.save

        def save_then_die(self, trainer, pl_module):  # noqa: ANN001
            original(self, trainer, pl_module)
            if trainer.global_step == kill_step:
                os.kill(os.getpid(), signal.SIGKILL)

        callbacks.StepCheckpoint.save = save_then_die
    from neurofm.cli.main import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
