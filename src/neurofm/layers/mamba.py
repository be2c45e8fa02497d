"""Mamba (selective state-space) blocks and a multi-rate Mamba backbone.

The blocks are ``mambapy``'s pre-norm residual blocks (``x + mixer(rmsnorm(x))``, Gu & Dao
2023), a maintained pure-PyTorch Mamba (the optional extra ``neurofm[ssm]``). Its selective scan
runs three ways, all on the same weights:

- ``"parallel"``: mambapy's Blelloch parallel scan (CPU or GPU, the default);
- ``"sequential"``: the step-by-step recurrence, the slow reference twin of the parity tests;
- ``"cuda"``: the fused kernel of ``mamba-ssm`` (imported only when asked for, on CUDA inputs).

``"auto"`` takes the CUDA kernel when ``mamba-ssm`` imports and the input is on a GPU, and the
parallel scan otherwise. The scan runs in float32 (``A_log`` is kept in float32 by mambapy).
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurofm.layers.norms import RMSNorm

ScanName = Literal["auto", "parallel", "sequential", "cuda"]
SCANS = ("auto", "parallel", "sequential", "cuda")
FUSIONS = ("concat", "add", "attention")


def _mambapy():
    try:
        from mambapy import mamba
    except ImportError as err:
        raise ImportError(
            "the Mamba blocks need mambapy: pip install 'neurofm[ssm]' (mambapy==1.2.0)"
        ) from err
    return mamba


def cuda_scan_available() -> bool:
    """Whether ``mamba-ssm``'s fused selective-scan kernel can be imported."""
    return importlib.util.find_spec("mamba_ssm") is not None and torch.cuda.is_available()


class MambaStack(nn.Module):
    """``n_layers`` Mamba residual blocks and a final RMSNorm on ``(B, T, d_model)``.

    Parameters
    ----------
    d_model : int
    n_layers : int
    d_state : int
        SSM state size N per channel.
    d_conv : int
        Width of the causal depthwise convolution.
    expand : int
        Inner width ``expand * d_model``.
    scan : {"auto", "parallel", "sequential", "cuda"}
        How the selective scan runs (see the module doc); change later with :meth:`set_scan`.
    """

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        *,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        scan: ScanName = "auto",
    ) -> None:
        super().__init__()
        mamba = _mambapy()
        self.mamba_config = mamba.MambaConfig(
            d_model=d_model,
            n_layers=n_layers,
            d_state=d_state,
            d_conv=d_conv,
            expand_factor=expand,
        )
        self.blocks = nn.ModuleList(mamba.ResidualBlock(self.mamba_config) for _ in range(n_layers))
        self.norm = RMSNorm(d_model)
        self.scan: ScanName = "auto"
        self.set_scan(scan)

    def set_scan(self, scan: ScanName) -> None:
        """Choose the scan implementation (weights are unchanged)."""
        if scan not in SCANS:
            raise ValueError(f"MambaStack: scan={scan!r}; allowed: {', '.join(SCANS)}")
        if scan == "cuda" and not cuda_scan_available():
            raise ImportError("scan='cuda' needs mamba-ssm installed and a CUDA device")
        self.scan = scan

    def _configure(self, x: Tensor) -> None:
        scan = self.scan
        if scan == "auto":
            scan = "cuda" if x.is_cuda and cuda_scan_available() else "parallel"
        if scan == "cuda":
            if not x.is_cuda:
                raise ValueError("MambaStack: scan='cuda' needs the input on a CUDA device")
            from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

            for block in self.blocks:
                block.mixer.selective_scan_cuda = selective_scan_fn
        self.mamba_config.use_cuda = scan == "cuda"
        self.mamba_config.pscan = scan != "sequential"

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` (B, T, d_model) to the same shape (causal in T)."""
        self._configure(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class MultiRateMamba(nn.Module):
    """One :class:`MambaStack` per time rate, fused back at the finest rate.

    Stream ``r`` reads the input averaged over blocks of ``r`` steps (the last block of a length
    that ``r`` does not divide averages the steps that remain), and its outputs are repeated
    ``r`` times to the input length. ``fusion`` combines the streams per time step: ``"concat"``
    (a linear map of the concatenated streams), ``"add"`` (their sum) or ``"attention"`` (a
    learned query attends over the streams of each step). A coarse stream's step reads its whole
    block, so only ``rates=(1,)`` is causal.

    Parameters
    ----------
    d_model, n_layers, d_state, d_conv, expand, scan
        Of every stream's :class:`MambaStack`.
    rates : tuple of int
        Pooling factor of each stream, e.g. (1, 4, 16).
    fusion : {"concat", "add", "attention"}
    """

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        *,
        rates: tuple[int, ...] = (1,),
        fusion: Literal["concat", "add", "attention"] = "concat",
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        scan: ScanName = "auto",
    ) -> None:
        super().__init__()
        if not rates or any(r < 1 for r in rates) or len(set(rates)) != len(rates):
            raise ValueError(f"MultiRateMamba: rates must be distinct integers >= 1, got {rates}")
        if fusion not in FUSIONS:
            raise ValueError(f"MultiRateMamba: fusion={fusion!r}; allowed: {', '.join(FUSIONS)}")
        self.rates, self.fusion = tuple(rates), fusion
        self.streams = nn.ModuleList(
            MambaStack(d_model, n_layers, d_state=d_state, d_conv=d_conv, expand=expand, scan=scan)
            for _ in rates
        )
        self.fuse = None
        if len(rates) > 1 and fusion == "concat":
            self.fuse = nn.Linear(len(rates) * d_model, d_model)
        elif len(rates) > 1 and fusion == "attention":
            self.query = nn.Parameter(torch.zeros(d_model))
            self.fuse = nn.Linear(d_model, d_model)

    def set_scan(self, scan: ScanName) -> None:
        """Choose the scan of every stream."""
        for stream in self.streams:
            stream.set_scan(scan)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` (B, T, d_model) to (B, T, d_model)."""
        t = x.shape[1]
        outs = []
        for rate, stream in zip(self.rates, self.streams):
            if rate == 1:
                outs.append(stream(x))
                continue
            pooled = F.avg_pool1d(x.transpose(1, 2), rate, ceil_mode=True).transpose(1, 2)
            outs.append(stream(pooled).repeat_interleave(rate, dim=1)[:, :t])
        if len(outs) == 1:
            return outs[0]
        stacked = torch.stack(outs, dim=2)  # (B, T, n_rates, D)
        if self.fusion == "add":
            return stacked.sum(dim=2)
        if self.fusion == "concat":
            return self.fuse(stacked.flatten(2))
        keys = self.fuse(stacked)  # (B, T, n_rates, D)
        weights = torch.softmax(keys @ self.query / keys.shape[-1] ** 0.5, dim=-1)
        return (weights[..., None] * stacked).sum(dim=2)
