"""NTD: a convolutional denoising-diffusion network for multichannel neural signals.

After "Generating realistic neurophysiological time series with denoising diffusion probabilistic
models" (Vetter, Macke & Gao 2023, NTD): an epsilon-predicting denoiser over continuous signals
(B, C, T) trained with the DDPM objective, whose main use is imputation by masking (fill a gap,
forecast the future). Parts:

- every channel is processed by the same 1-D convolution stack; a learned channel embedding and
  the timestep embedding (sinusoid + MLP) condition each block;
- adaptive convolution blocks (:class:`~neurofm.layers.AdaptiveConvBlock`): residual, dilated,
  non-causal convolutions whose normalised features are scaled and shifted by that conditioning;
- a learned channel-mixing map after every block (signals of different channels interact);
- the observed samples of an imputation enter through a masked (partial) convolution
  (:class:`~neurofm.layers.MaskedConv1d`) that reads only observed samples, with the mask itself
  as an extra input channel.

Optional analytic skip (``skip: gaussian``): the network predicts the residual over the noise
that the optimal denoiser of Gaussian data with standard deviation ``data_std`` would predict,
``sqrt(1 - abar_t) x_t / (abar_t data_std² + 1 - abar_t)``. At high noise that base is nearly
the whole answer (``eps ~ x_t``) and must be matched very precisely: with epsilon prediction the
implied clean signal is ``(x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``, so at ``abar_t ~ 4e-5``
(step 999 of the linear schedule) a noise error of 0.017 (mean square) becomes an error of ~400
in the signal, and samples come out several times too large. The skip needs the forward
process's schedule (``n_train_steps``, ``beta_*``: they must equal the diffusion objective's;
the objective checks).

Deviations from the reference description: the channel mixing is a dense learned ``C x C`` map
per block rather than NTD's structured cross-channel convolutions; the conditioning enters by
FiLM rather than by concatenation; the noise schedules and samplers are ``diffusers``'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from neurofm.checks import fraction, positive
from neurofm.layers import AdaptiveConvBlock, MaskedConv1d, TimestepEmbedding
from neurofm.registry import MODELS
from neurofm.types import ModelOutput, ModelSpec


@dataclass
class NTDConfig:
    """Configuration of :class:`NTD`."""

    n_chans: int = 64  # signal channels C
    d_model: int = 64  # hidden convolution channels
    n_layers: int = 6  # adaptive convolution blocks; block i has dilation 2**i
    kernel_size: int = 5  # odd temporal kernel of every convolution (samples)
    time_embed_dim: int = 128  # sinusoidal features of the diffusion step (even)
    dropout: float = 0.0  # dropout inside each block
    skip: Literal["none", "gaussian"] = "none"  # analytic Gaussian-denoiser base (module doc)
    data_std: float = 1.0  # signal standard deviation the Gaussian base assumes
    n_train_steps: int = 1000  # the forward schedule (skip: gaussian only; = the objective's)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02

    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": {"n_chans": 4, "d_model": 8, "n_layers": 2, "kernel_size": 3, "time_embed_dim": 16},
        "small": {"d_model": 64, "n_layers": 6},
        "base": {"d_model": 128, "n_layers": 8},
    }

    def __post_init__(self) -> None:
        positive(self, "n_chans", "d_model", "n_layers", "kernel_size", "time_embed_dim")
        positive(self, "data_std")
        if self.skip not in ("none", "gaussian"):
            raise ValueError(f"skip must be 'none' or 'gaussian', got {self.skip!r}")
        fraction(self, "dropout")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.time_embed_dim % 2:
            raise ValueError(f"time_embed_dim must be even, got {self.time_embed_dim}")


@MODELS.register(
    "ntd",
    config=NTDConfig,
    spec=ModelSpec(inputs="signal", outputs="noise", sampling="diffusion"),
)
class NTD(nn.Module):
    """Epsilon-predicting denoiser: (t (B,), x_t (B, C, T), observed, mask) -> noise (B, C, T)."""

    def __init__(self, config: NTDConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.input = nn.Conv1d(2, d, config.kernel_size, padding=config.kernel_size // 2)
        self.observed = MaskedConv1d(1, d, config.kernel_size)
        self.time_embedding = TimestepEmbedding(config.time_embed_dim, d)
        self.channel_embedding = nn.Embedding(config.n_chans, d)
        self.blocks = nn.ModuleList(
            AdaptiveConvBlock(d, d, config.kernel_size, dilation=2**i, dropout=config.dropout)
            for i in range(config.n_layers)
        )
        self.mixing = nn.ModuleList(
            nn.Linear(config.n_chans, config.n_chans, bias=False) for _ in range(config.n_layers)
        )
        for mix in self.mixing:  # start as the identity plus a small cross-channel part
            nn.init.normal_(mix.weight, std=0.01)
        self.output = nn.Conv1d(d, 1, 1)
        if config.skip == "gaussian":
            from neurofm.generation.diffusion import alphas_cumprod

            abar = alphas_cumprod(self.schedule()).float()  # (n_train_steps,)
            self.register_buffer("abar", abar, persistent=False)

    def schedule(self):
        """The forward schedule the Gaussian skip assumes (a ``NoiseSchedule``; None without
        the skip: the model then works with any schedule)."""
        from neurofm.generation.diffusion import NoiseSchedule

        c = self.config
        if c.skip == "none":
            return None
        return NoiseSchedule(c.n_train_steps, c.beta_schedule, c.beta_start, c.beta_end)

    def forward(
        self,
        t: Tensor,
        xt: Tensor,
        *,
        observed: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> ModelOutput:
        """Predict the noise in ``xt``.

        Parameters
        ----------
        t : LongTensor, shape (B,) or scalar
            Diffusion step of each window, in ``[0, n_train_steps)``.
        xt : Tensor, shape (B, C, T)
            The noisy signal.
        observed : Tensor, shape (B, C, T), optional
            Known samples (anything where ``mask`` is 0).
        mask : Tensor, shape (B, C, T), optional
            1 where the sample is known; with ``observed``. None: nothing is known.

        Returns
        -------
        ModelOutput
            ``prediction``: the predicted noise (B, C, T).
        """
        if xt.dim() != 3 or xt.shape[1] != self.config.n_chans:
            raise ValueError(
                f"NTD: x_t must be (B, {self.config.n_chans}, T), got {tuple(xt.shape)}"
            )
        if (observed is None) != (mask is None):
            raise ValueError("NTD: give observed and mask together or neither")
        b, c, n = xt.shape
        if mask is None:
            mask = xt.new_zeros(b, c, n)
            observed = xt.new_zeros(b, c, n)
        elif tuple(mask.shape) != tuple(xt.shape) or tuple(observed.shape) != tuple(xt.shape):
            raise ValueError(
                f"NTD: observed {tuple(observed.shape)} and mask {tuple(mask.shape)} must be "
                f"shaped like x_t {tuple(xt.shape)}"
            )
        mask = mask.to(xt.dtype).reshape(b * c, 1, n)
        inputs = torch.cat([xt.reshape(b * c, 1, n), mask], dim=1)  # (B C, 2, T)
        h = self.input(inputs) + self.observed(observed.to(xt.dtype).reshape(b * c, 1, n), mask)
        t = torch.as_tensor(t, device=xt.device).reshape(-1).expand(b)
        cond = self.time_embedding(t)[:, None, :] + self.channel_embedding.weight[None]  # (B, C, D)
        cond = cond.reshape(b * c, -1)
        for block, mix in zip(self.blocks, self.mixing):
            h = block(h, cond)  # (B C, D, T)
            per_channel = h.reshape(b, c, -1, n).transpose(1, 3)  # (B, T, D, C)
            h = h + mix(per_channel).transpose(1, 3).reshape(b * c, -1, n)
        prediction = self.output(h).reshape(b, c, n)
        if self.config.skip == "gaussian":
            a = self.abar[t.long()].to(xt.dtype).view(b, 1, 1)
            base = (1.0 - a).sqrt() * xt / (a * self.config.data_std**2 + 1.0 - a)
            prediction = prediction + base
        return ModelOutput(prediction=prediction)
