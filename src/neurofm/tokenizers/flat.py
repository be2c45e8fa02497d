"""Flat tokenizers: amplitude codes of all channels laid out as one sequence ``(B, T_tokens)``.

An amplitude quantizer (mu-law by default, any registered ``B C T`` tokenizer) codes every
channel-sample; the ``(C, T)`` grid of codes is then read in a fixed order:

- ``flat``: ``order="time"`` reads all channels at time 0, then all at time 1, ... (a causal
  model over the sequence is causal in time); ``order="channel"`` reads channel by channel.
- ``block_causal``: the grid is cut into blocks of ``block_chans`` channels x ``block_times``
  samples. Blocks are read time block by time block (channel blocks in order inside each), and
  each block time-major. Every token of time block ``k`` comes after every token of time blocks
  ``< k``, so a causal model is causal in time at the resolution of ``block_times`` samples (at
  every sample when a block spans all channels).

Both are exact permutations: ``decode`` inverts the layout, then the amplitude quantizer.
Channel counts and lengths that do not fill whole blocks raise (nothing is padded).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from neurofm.registry import TOKENIZERS, create
from neurofm.tokenizers.base import Tokenizer, like_input, to_tensor
from neurofm.types import TokenizerOutput


def _amplitude_default() -> dict[str, Any]:
    return {"name": "mulaw", "n_levels": 256}


@dataclass
class FlatConfig:
    amplitude: dict[str, Any] = field(
        default_factory=_amplitude_default
    )  # per-sample quantizer spec
    order: Literal["time", "channel"] = "time"  # time: channels interleaved per sample (causal)

    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {"amplitude": {"name": "mulaw", "n_levels": 16}}}


@dataclass
class BlockCausalConfig:
    amplitude: dict[str, Any] = field(
        default_factory=_amplitude_default
    )  # per-sample quantizer spec
    block_chans: int | None = None  # channels per block; None: all channels in one block
    block_times: int = 4  # samples per block

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"amplitude": {"name": "mulaw", "n_levels": 16}, "block_chans": 2, "block_times": 4}
    }

    def __post_init__(self) -> None:
        if self.block_chans is not None and self.block_chans < 1:
            raise ValueError(f"block_chans must be >= 1 or null, got {self.block_chans}")
        if self.block_times < 1:
            raise ValueError(f"block_times must be >= 1, got {self.block_times}")


class _FlatBase(Tokenizer):
    """Amplitude quantizer followed by a fixed permutation of the ``(C, T)`` code grid."""

    codes_layout = "B T"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.amplitude = create(TOKENIZERS, config.amplitude, key="tokenizer.amplitude")
        if getattr(self.amplitude, "codes_layout", None) != "B C T":
            raise ValueError(
                f"tokenizer.amplitude: needs a per-sample quantizer (codes 'B C T'), "
                f"got {self.amplitude.registry_name!r}"
            )

    @property
    def requires_fit(self) -> bool:  # type: ignore[override]
        return self.amplitude.requires_fit

    def _fit(self, signals: Iterable[np.ndarray]) -> None:
        self.amplitude._fit(signals)

    @property
    def vocab_size(self) -> int:
        return self.amplitude.vocab_size

    def order(self, n_chans: int, n_times: int) -> torch.Tensor:
        """Index into the channel-major ``(C * T,)`` grid of each flat position, shape (C * T,)."""
        raise TypeError(f"{type(self).__name__} defines no order")

    def positions(self, n_chans: int, n_times: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Channel and time of each flat token: two int64 tensors of shape (C * T,).

        Token ``j`` of ``encode(x)`` is the code of ``x[..., channel[j], time[j]]``; evaluation
        uses this to put a flat model's next-token predictions back onto ``(channel, time)``.
        """
        index = self.order(n_chans, n_times)
        return index // n_times, index % n_times

    def codes_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        *batch, n_chans, n_times = input_shape
        self.order(n_chans, n_times)  # raises for shapes that do not fit the layout
        return (*batch, n_chans * n_times)

    def encode(self, x: Any) -> TokenizerOutput:
        """Signal (B, C, T) or (C, T) -> flat codes (B, C * T) or (C * T,)."""
        inner = self.amplitude.encode(x)
        grid = to_tensor(inner.codes)
        n_chans, n_times = grid.shape[-2:]
        index = self.order(n_chans, n_times).to(grid.device)
        flat = grid.reshape(*grid.shape[:-2], n_chans * n_times)[..., index]
        info = {**inner.info, "n_chans": int(n_chans), "n_times": int(n_times)}
        return TokenizerOutput(codes=like_input(flat, x), n_clipped=inner.n_clipped, info=info)

    def decode(self, codes: Any) -> Any:
        """Flat codes (B, N) or (N,) (or the TokenizerOutput) -> signal (B, C, T) or (C, T).

        Raw codes need the channel count: taken from ``info`` of a TokenizerOutput, else from the
        fitted amplitude quantizer.
        """
        info = codes.info if isinstance(codes, TokenizerOutput) else {}
        source = codes.codes if isinstance(codes, TokenizerOutput) else codes
        flat = to_tensor(source)
        n_chans = info.get("n_chans") or getattr(self.amplitude, "fitted_chans", 0)
        if not n_chans:
            raise ValueError(
                "decode: the channel count is unknown; pass the TokenizerOutput of "
                "encode (its info holds n_chans) or fit the tokenizer first"
            )
        if flat.ndim not in (1, 2) or flat.shape[-1] % n_chans:
            raise ValueError(
                f"decode: expected codes (B, N) or (N,) with N a multiple of "
                f"{n_chans} channels, got shape {tuple(flat.shape)}"
            )
        n_times = flat.shape[-1] // n_chans
        index = self.order(n_chans, n_times).to(flat.device)
        grid = torch.empty_like(flat)
        grid[..., index] = flat
        grid = grid.reshape(*flat.shape[:-1], n_chans, n_times)
        return like_input(to_tensor(self.amplitude.decode(grid)), source)


@TOKENIZERS.register("flat", config=FlatConfig)
class FlatTokenizer(_FlatBase):
    """Amplitude codes of all channels flattened to (B, C * T), interleaved per time step."""

    def order(self, n_chans: int, n_times: int) -> torch.Tensor:
        grid = torch.arange(n_chans * n_times).reshape(n_chans, n_times)
        return (grid.T if self.config.order == "time" else grid).reshape(-1)


@TOKENIZERS.register("block_causal", config=BlockCausalConfig)
class BlockCausalTokenizer(_FlatBase):
    """Amplitude codes read block by block (channels x time) so that the order is causal in time."""

    def order(self, n_chans: int, n_times: int) -> torch.Tensor:
        block_chans = self.config.block_chans or n_chans
        block_times = self.config.block_times
        if n_chans % block_chans or n_times % block_times:
            raise ValueError(
                f"block_causal: input of {n_chans} channels x {n_times} samples does not divide "
                f"into blocks of {block_chans} channels x {block_times} samples; crop or choose "
                "another block size (nothing is padded)"
            )
        grid = torch.arange(n_chans * n_times).reshape(
            n_chans // block_chans, block_chans, n_times // block_times, block_times
        )
        # (channel block, channel, time block, time) -> (time block, channel block, time, channel)
        return grid.permute(2, 0, 3, 1).reshape(-1)
