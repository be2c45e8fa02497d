"""Patch tokenizer: continuous temporal patches per channel, ``(B, C, T) -> (B, C, n_patches, P)``.

The continuous tokens of patch-based encoders (BENDR-, MEGFormer- and BrainOmni-style front ends).
A length that is not a multiple of ``patch_len`` raises unless a ``remainder`` policy is chosen:
``drop`` leaves out the last ``T % patch_len`` samples, ``pad`` appends zeros; either way the
number is recorded in ``info`` and ``decode`` of the TokenizerOutput returns exactly the samples
that were encoded (``pad``: the original length).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from neurofm.registry import TOKENIZERS
from neurofm.tokenizers.base import Tokenizer, like_input, signal_batch, to_tensor
from neurofm.types import TokenizerOutput


@dataclass
class PatchConfig:
    patch_len: int = 32  # samples per patch
    remainder: Literal["error", "drop", "pad"] = "error"  # what to do with T % patch_len samples

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"patch_len": 8},
        "small": {"patch_len": 32},
        "base": {"patch_len": 64},
    }

    def __post_init__(self) -> None:
        if self.patch_len < 1:
            raise ValueError(f"patch_len must be >= 1, got {self.patch_len}")


@TOKENIZERS.register("patch", config=PatchConfig)
class PatchTokenizer(Tokenizer):
    """Non-overlapping temporal patches of each channel, as continuous embeddings."""

    codes_layout = None

    def codes_shape(self, input_shape: tuple[int, ...]) -> None:
        return None

    def _n_patches(self, n_times: int) -> int:
        rest = n_times % self.config.patch_len
        if rest and self.config.remainder == "error":
            raise ValueError(
                f"patch: {n_times} samples is not a multiple of patch_len "
                f"{self.config.patch_len} ({rest} left over); crop the input or set "
                "remainder to 'drop' or 'pad'"
            )
        full = n_times // self.config.patch_len
        return full + int(bool(rest) and self.config.remainder == "pad")

    def embeddings_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        *batch, n_chans, n_times = input_shape
        return (*batch, n_chans, self._n_patches(n_times), self.config.patch_len)

    def encode(self, x: Any) -> TokenizerOutput:
        """Signal (B, C, T) or (C, T) -> ``embeddings`` (B, C, n_patches, patch_len) or without B.

        ``info`` holds ``n_times`` (input length), ``n_dropped`` and ``n_padded`` samples.
        """
        t, added = signal_batch(x)
        n_times = t.shape[-1]
        n_patches = self._n_patches(n_times)
        used = n_patches * self.config.patch_len
        n_dropped = max(n_times - used, 0)
        n_padded = max(used - n_times, 0)
        if n_dropped:
            t = t[..., :used]
        if n_padded:
            t = torch.nn.functional.pad(t, (0, n_padded))
        patches = t.reshape(*t.shape[:-1], n_patches, self.config.patch_len)
        patches = patches[0] if added else patches
        info = {"n_times": int(n_times), "n_dropped": int(n_dropped), "n_padded": int(n_padded)}
        return TokenizerOutput(embeddings=like_input(patches, x), info=info)

    def decode(self, codes: Any) -> Any:
        """Patches (B, C, n_patches, P) or (C, n_patches, P) (or the TokenizerOutput) -> signal.

        From a TokenizerOutput the zeros added by ``remainder="pad"`` are removed again.
        """
        info = codes.info if isinstance(codes, TokenizerOutput) else {}
        source = codes.embeddings if isinstance(codes, TokenizerOutput) else codes
        patches = to_tensor(source)
        if patches.ndim not in (3, 4) or patches.shape[-1] != self.config.patch_len:
            raise ValueError(
                f"decode: expected patches (B, C, n_patches, {self.config.patch_len})"
                f" or (C, n_patches, {self.config.patch_len}), got "
                f"{tuple(patches.shape)}"
            )
        signal = patches.reshape(*patches.shape[:-2], -1)
        if info.get("n_padded"):
            signal = signal[..., : signal.shape[-1] - info["n_padded"]]
        return like_input(signal, source)
