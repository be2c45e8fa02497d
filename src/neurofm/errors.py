"""The error types neurofm raises. Every message names the file, field and problem."""

from __future__ import annotations

from typing import Any


class NeuroFMError(Exception):
    """Base class of every error neurofm raises on purpose."""


class RecordingError(NeuroFMError, ValueError):
    """A recording file cannot be read or holds bad data.

    Parameters
    ----------
    path : str | None
        The file the problem is in.
    problem : str
        What is wrong, in words.
    channel : str | None
        The channel concerned, when there is one.
    sample : int | None
        The sample index concerned, when there is one.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        channel: str | None = None,
        sample: int | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        self.channel = channel
        self.sample = sample
        where = []
        if self.path is not None:
            where.append(f"file {self.path!r}")
        if channel is not None:
            where.append(f"channel {channel!r}")
        if sample is not None:
            where.append(f"sample {sample}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)


class ChannelMismatchError(NeuroFMError, ValueError):
    """The channels given do not match the channels a model or dataset expects."""


class OutputError(NeuroFMError, OSError):
    """An output folder cannot be written (read-only, not a folder, or out of space)."""


class ConfigError(NeuroFMError, ValueError):
    """One or more configuration values are invalid.

    ``problems`` holds one line per problem, each naming the key path, the allowed values and a
    close match where one exists.
    """

    def __init__(self, problems: list[str] | str, *, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        self.source = source
        head = f"invalid configuration{f' in {source!r}' if source else ''}"
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head} ({len(self.problems)} problem(s)):\n{body}")


class CheckpointError(NeuroFMError, RuntimeError):
    """A checkpoint is missing, incomplete, corrupt or unsafe to load."""


class TrainingError(NeuroFMError, RuntimeError):
    """Training cannot continue (for example a non-finite loss)."""


class UnsafePathError(NeuroFMError, ValueError):
    """A path read from a manifest, config or run folder leads outside the folder it belongs to.

    Parameters
    ----------
    path : str
        The file the path was read from.
    field : str
        The field holding it.
    value : str
        The path as written.
    root : str
        The folder it must stay inside.
    """

    def __init__(self, *, path: str, field: str, value: str, root: str) -> None:
        self.path, self.field, self.value, self.root = str(path), field, value, str(root)
        super().__init__(
            f"file {self.path!r}: field {field!r} is {value!r}, which leads outside "
            f"{self.root!r}; paths there must be relative and stay inside (no absolute path, no "
            "'..', no link pointing out): refused"
        )


class FolderLockedError(NeuroFMError, RuntimeError):
    """Another neurofm process is writing the same output folder."""


def require_extra(module: str, extra: str) -> Any:
    """Import the optional dependency ``module``, or raise an ImportError naming the extra.

    Heavy or optional libraries (``flow_matching``, ``diffusers``) are imported only where they
    are used, so that ``import neurofm`` stays light.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{module} is needed here and is not installed: pip install 'neurofm[{extra}]'"
        ) from error
