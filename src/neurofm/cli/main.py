"""The ``neurofm`` command: one subcommand per function, parsed by jsonargparse.

Config-driven commands take ``--config file.yaml`` plus dotted overrides such as
``--model.n_layers 4``. The overrides are taken out of the argument list before jsonargparse
parses the command's own flags, and are validated against the config dataclasses (so an unknown
key or a bad value gets one error per problem, naming the key path). Errors of neurofm print
without a traceback and exit with status 2, unless ``--debug`` is given.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

# command name -> "module:function". Each function's signature and docstring are its help.
COMMANDS: dict[str, str] = {
    "demo": "neurofm.cli.demo:demo",
    "list": "neurofm.cli.listing:list_entries",
    "inspect": "neurofm.cli.inspect:inspect",
    "prepare": "neurofm.cli.prepare:prepare",
    "tokenize": "neurofm.cli.tokenize:tokenize",
    "bands": "neurofm.cli.bands:bands",
    "fit": "neurofm.cli.fit:fit",
    "evaluate": "neurofm.cli.evaluate:evaluate",
    "learning-curve": "neurofm.cli.learning_curve:learning_curve",
    "decode": "neurofm.cli.decode:decode",
    "reach": "neurofm.cli.reach:reach",
    "fewshot": "neurofm.cli.reach:fewshot",
    "stimulus": "neurofm.cli.neural_real:stimulus",
    "lfp": "neurofm.cli.neural_real:lfp",
    "generate": "neurofm.cli.generate:generate",
    "benchmark": "neurofm.cli.benchmark:benchmark",
    "synth-masc": "neurofm.cli.synth_masc:synth_masc",
}


def _load(spec: str) -> Callable[..., Any] | None:
    module, func = spec.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name == module:
            return None
        raise
    return getattr(mod, func)


def split_overrides(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Separate dotted overrides (``--a.b VALUE`` or ``--a.b=VALUE``) from the other arguments.

    Values are parsed with YAML rules (``4`` is an int, ``[1, 2]`` a list).
    """
    from neurofm.config import parse_override_value

    rest: list[str] = []
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "." in arg.split("=", 1)[0]:
            key, eq, value = arg[2:].partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    from neurofm.errors import ConfigError

                    raise ConfigError(f"{key}: override given without a value")
                value = argv[i + 1]
                i += 1
            overrides[key] = parse_override_value(value)
        else:
            rest.append(arg)
        i += 1
    return rest, overrides


FLAGS = ("--markdown", "--unrelated", "--overwrite")
"""Boolean options that may be given alone (``neurofm list --markdown``): jsonargparse wants
``--markdown true``, so a flag without a value gets ``true``."""


def expand_flags(argv: list[str]) -> list[str]:
    """``argv`` with ``true`` after every option of :data:`FLAGS` given without a value."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        following = argv[i + 1] if i + 1 < len(argv) else None
        if arg in FLAGS and (following is None or following.startswith("--")):
            out.append("true")
    return out


MULTI_VALUE_OPTIONS = ("--inputs",)
"""Options that take several values (``neurofm demo --inputs a.edf b.edf``): jsonargparse wants
one list value, so the values up to the next option are gathered into a JSON list."""


def gather_values(argv: list[str]) -> list[str]:
    """``argv`` with the values after each option of :data:`MULTI_VALUE_OPTIONS` as one JSON list
    (a value already given as a list, ``--inputs '[a, b]'``, is kept)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        out.append(argv[i])
        i += 1
        if out[-1] not in MULTI_VALUE_OPTIONS or (i < len(argv) and argv[i].startswith("[")):
            continue
        values = []
        while i < len(argv) and not argv[i].startswith("--"):
            values.append(argv[i])
            i += 1
        out.append(json.dumps(values))
    return out


SECTION_CONFIG_COMMANDS = ("fit",)
"""Commands whose ``--config`` file is read here, section by section, rather than by
jsonargparse: every section (a misspelled one too) reaches the command's own validation, which
reports all problems at once with close matches instead of a usage error about the first one."""


def take_config_file(argv: list[str], overrides: dict[str, Any]) -> tuple[list[str], dict]:
    """For :data:`SECTION_CONFIG_COMMANDS`: ``argv`` without ``--config FILE`` and the file's
    sections placed before the dotted overrides (which apply on top of them)."""
    if not argv or argv[0] not in SECTION_CONFIG_COMMANDS:
        return argv, overrides
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path, rest = argv[i + 1], argv[:i] + argv[i + 2 :]
            break
        if arg.startswith("--config="):
            path, rest = arg.split("=", 1)[1], argv[:i] + argv[i + 1 :]
            break
    else:
        return argv, overrides
    from neurofm.config import load_yaml

    return rest, {**load_yaml(path), **overrides}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neurofm`` command."""
    from jsonargparse import CLI

    from neurofm.errors import NeuroFMError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        argv, overrides = split_overrides(gather_values(expand_flags(argv)))
        # `neurofm <command> FILE.yaml ...` is short for `neurofm <command> --config FILE.yaml ...`
        if len(argv) > 1 and argv[0] in COMMANDS and argv[1].endswith((".yaml", ".yml")):
            argv = [argv[0], "--config", *argv[1:]]
        argv, overrides = take_config_file(argv, overrides)
        functions = {}
        for name, spec in COMMANDS.items():
            fn = _load(spec)
            if fn is not None:
                functions[name] = fn
        if overrides:
            from neurofm.cli import _context

            _context.OVERRIDES.update(overrides)
        CLI(
            functions,
            args=argv,
            as_positional=True,
            description="neurofm: foundation models of electrophysiology",
        )
    except NeuroFMError as err:
        if debug:
            raise
        print(f"neurofm: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        from neurofm.fileio import WRITE_ERRNOS

        if debug or err.errno not in WRITE_ERRNOS:
            raise
        where = f" {err.filename!r}" if err.filename else ""
        print(f"neurofm: error: cannot write{where}: {err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurofm: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
