"""The tokenizer interface shared by fixed (mu-law, binning, BPE, bands) and learned tokenizers.

A tokenizer is an ``nn.Module`` registered in ``TOKENIZERS`` under a short name with a dataclass
config. Fitted statistics (per-channel scales, bin edges, BPE merges) are tensors or buffers, so
that ``save`` writes them as safetensors beside a JSON config (never a pickle) and ``.to(device)``
moves them; learned tokenizers add parameters the same way.

Shape conventions of :class:`~neurofm.types.TokenizerOutput` (``codes_layout`` of each class):

- ``"B C T"``: one code per channel-sample (mu-law, binning).
- ``"B T"``: one flat token sequence per item (flat, block-causal, BPE).
- ``"B L C T"`` / ``"B L T ..."``: ``L`` quantizer levels (residual VQ, frequency levels).
- ``None`` codes: continuous tokenizers, whose ``embeddings`` hold the tokens.

Inputs may be numpy arrays or torch tensors; outputs follow the input's type and device.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from neurofm.config import build_config
from neurofm.errors import ChannelMismatchError, CheckpointError
from neurofm.fileio import atomic_open, write_json_atomic
from neurofm.types import TokenizerOutput

CONFIG_FILE = "tokenizer.json"
STATE_FILE = "tokenizer.safetensors"
FORMAT_VERSION = 1


def to_tensor(x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x`` as a torch tensor (numpy arrays are wrapped without a copy when possible)."""
    if isinstance(x, torch.Tensor):
        return x if dtype is None else x.to(dtype)
    arr = np.ascontiguousarray(x)
    if not arr.flags.writeable:  # read-only memmaps: torch needs writable memory
        arr = arr.copy()
    out = torch.from_numpy(arr)
    return out if dtype is None else out.to(dtype)


def like_input(value: torch.Tensor | None, reference: Any) -> Any:
    """``value`` returned in the type of ``reference``: numpy in, numpy out; tensors stay tensors."""
    if value is None or isinstance(reference, torch.Tensor):
        return value
    return value.detach().cpu().numpy()


def signal_batch(x: Any, *, name: str = "x") -> tuple[torch.Tensor, bool]:
    """A floating ``(B, C, T)`` tensor from a ``(C, T)`` or ``(B, C, T)`` input.

    Returns the tensor and whether a batch axis was added (to remove it again on output).
    Float64 inputs stay float64; every other type becomes float32.
    """
    t = to_tensor(x)
    if t.ndim not in (2, 3):
        raise ValueError(f"{name}: expected shape (C, T) or (B, C, T), got {tuple(t.shape)}")
    if t.dtype != torch.float64:
        t = t.to(torch.float32)
    return (t.unsqueeze(0), True) if t.ndim == 2 else (t, False)


def iter_signals(data: Any) -> Iterable[np.ndarray]:
    """Yield ``(C, T)`` arrays from a ``(B, C, T)`` / ``(C, T)`` array or an iterable of ``(C, T)``."""
    if isinstance(data, (np.ndarray, torch.Tensor)):
        arr = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else data
        if arr.ndim == 2:
            yield arr
            return
        if arr.ndim != 3:
            raise ValueError(f"fit data: expected (B, C, T) or (C, T), got shape {arr.shape}")
        yield from arr
        return
    for i, item in enumerate(data):
        arr = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else np.asarray(item)
        if arr.ndim != 2:
            raise ValueError(f"fit data item {i}: expected shape (C, T), got {arr.shape}")
        yield arr


class Tokenizer(nn.Module):
    """Base class of every tokenizer (see the module docstring for shapes and types).

    Subclasses set ``config_cls``, ``codes_layout``, ``requires_fit`` and implement ``encode``,
    ``decode``, ``vocab_size`` and ``codes_shape``; fitted tokenizers also implement ``_fit``.

    Parameters
    ----------
    config : dataclass
        The tokenizer's config (an instance of ``config_cls``).
    """

    config_cls: ClassVar[type]
    codes_layout: ClassVar[str | None] = "B C T"
    requires_fit: ClassVar[bool] = False
    decodable: ClassVar[bool] = True  # False: decode raises (the tokens are not invertible)

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.fitted_on: str | None = None
        self.registry_name = registered_name(type(self))

    # -- fitting -----------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """True once ``fit`` ran (or a fitted state was loaded); always True for fixed ones."""
        return not self.requires_fit or self.fitted_on is not None

    def fit(self, data: Any, *, fitted_on: str = "unspecified") -> Tokenizer:
        """Fit the tokenizer's statistics on training data; a no-op for fixed tokenizers.

        Parameters
        ----------
        data : array, tensor or iterable
            A ``(B, C, T)`` / ``(C, T)`` array or tensor, or an iterable of ``(C, T)`` arrays
            (segments of the train split), in the units ``encode`` will receive.
        fitted_on : str
            Identifier of the data, e.g. ``"<dataset fingerprint>:train"``; saved with the state.

        Returns
        -------
        Tokenizer
            ``self``.
        """
        if self.requires_fit:
            self._fit(iter_signals(data))
            self.mark_fitted(str(fitted_on))
        return self

    def check_data(self, sfreq: float) -> list[str]:
        """Problems of tokenizing data sampled at ``sfreq`` Hz (one line each, empty: none).

        A tokenizer whose design depends on the sampling rate takes it here when its config
        leaves it unset, and reports a set rate that differs from the data's."""
        return []

    def mark_fitted(self, fitted_on: str | None) -> None:
        """Record ``fitted_on`` on this tokenizer and on the tokenizers it is built from."""
        for module in self.modules():
            if isinstance(module, Tokenizer):
                module.fitted_on = fitted_on

    def _fit(self, signals: Iterable[np.ndarray]) -> None:
        """Fit statistics from ``(C, T)`` arrays (only for ``requires_fit`` tokenizers)."""
        raise TypeError(f"{type(self).__name__} sets requires_fit but defines no _fit")

    def check_fitted(self) -> None:
        """Raise a RuntimeError naming the tokenizer when it must be fitted first."""
        if not self.is_fitted:
            raise RuntimeError(
                f"tokenizer {self.registry_name!r} is not fitted: call fit(train_data) or load a "
                "fitted one with load_tokenizer(folder)"
            )

    # -- interface -----------------------------------------------------------------------------
    def encode(self, x: Any) -> TokenizerOutput:
        """Tokenize ``x`` (``(B, C, T)`` or ``(C, T)``); outputs follow the input's type/device."""
        raise TypeError(f"{type(self).__name__} defines no encode")

    def decode(self, codes: Any) -> Any:
        """Invert ``encode``: codes (or the whole ``TokenizerOutput``) back to a signal."""
        raise TypeError(f"{type(self).__name__} defines no decode")

    def forward(self, x: Any) -> TokenizerOutput:
        """Same as :meth:`encode` (so that learned tokenizers train like any module)."""
        return self.encode(x)

    @property
    def vocab_size(self) -> int | None:
        """Number of distinct codes, or None for continuous tokenizers."""
        return None

    def codes_shape(self, input_shape: tuple[int, ...]) -> tuple[int | None, ...] | None:
        """Shape of ``encode(x).codes`` for ``x`` of ``input_shape`` ((B, C, T) or (C, T)).

        ``None`` for continuous tokenizers; a ``None`` entry marks a data-dependent length.
        """
        return tuple(input_shape)

    def embeddings_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """Shape of ``encode(x).embeddings`` for ``x`` of ``input_shape``, None when there are none."""
        return None

    # -- state -------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The fitted state as named tensors (written to safetensors by :meth:`save`)."""
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}

    def load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the state written by :meth:`state_tensors` (buffers may change shape)."""
        params = dict(self.named_parameters())
        expected = set(self.state_dict())  # parameters and persistent buffers
        unknown = sorted(set(state) - expected)
        missing = sorted(expected - set(state))
        if unknown or missing:
            raise CheckpointError(
                f"tokenizer {self.registry_name!r}: state tensors do not match; "
                f"unknown: {unknown}, missing: {missing}"
            )
        for name, value in state.items():
            module_name, _, leaf = name.rpartition(".")
            module = self.get_submodule(module_name) if module_name else self
            if name in params:
                with torch.no_grad():
                    params[name].data = value.to(params[name].dtype)
            else:
                module._buffers[leaf] = value

    def channel_check(self, n_chans: int, fitted_chans: int) -> None:
        """Raise ChannelMismatchError when ``n_chans`` differs from the fitted channel count."""
        if fitted_chans and n_chans != fitted_chans:
            raise ChannelMismatchError(
                f"tokenizer {self.registry_name!r} was fitted on {fitted_chans} channels "
                f"(fitted_on={self.fitted_on!r}) but got {n_chans}"
            )

    def save(self, directory: str | Path) -> Path:
        """Write ``tokenizer.json`` (name, config, fitted_on) and ``tokenizer.safetensors``."""
        from safetensors.torch import save

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_open(directory / STATE_FILE, "wb") as fh:
            fh.write(save(self.state_tensors()))
        write_json_atomic(
            directory / CONFIG_FILE,
            {
                "format_version": FORMAT_VERSION,
                "name": self.registry_name,
                "config": asdict(self.config),
                "fitted_on": self.fitted_on,
            },
        )
        return directory

    save_pretrained = save

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizer:
        """Load a tokenizer saved by :meth:`save` (its class is read from ``tokenizer.json``)."""
        return load_tokenizer(directory)

    from_pretrained = load

    def extra_repr(self) -> str:
        return f"name={self.registry_name!r}, fitted_on={self.fitted_on!r}"


def registered_name(cls: type) -> str:
    """The short name ``cls`` is registered under in ``TOKENIZERS`` (its class name if none)."""
    from neurofm.registry import TOKENIZERS

    for entry in TOKENIZERS.entries():
        if entry.obj is cls:
            return entry.name
    return cls.__name__


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Build the tokenizer saved in ``directory`` (registry name from ``tokenizer.json``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from neurofm.registry import TOKENIZERS

    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    try:
        meta = json.loads(config_path.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"{config_path}: no saved tokenizer here") from err
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{config_path}: not valid JSON: {err}") from err
    for key in ("name", "config"):
        if key not in meta:
            raise CheckpointError(f"{config_path}: lacks the field {key!r}")
    entry = TOKENIZERS.get(meta["name"])
    config = build_config(entry.config_cls, meta["config"], source=str(config_path))
    tokenizer = entry.obj(config)
    tokenizer.registry_name = meta["name"]
    state_path = directory / STATE_FILE
    try:
        state = load_file(state_path)
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"{state_path}: cannot read the tokenizer state: {err}") from err
    tokenizer.load_state_tensors(state)
    tokenizer.mark_fitted(meta.get("fitted_on"))
    return tokenizer
