"""The folded computations of the compact decoders equal the layer-by-layer ones they replace.

``cnn_univariate``, ``cnn_univariate_quantized``, ``classifier_quantized`` and
``cnnlstm_classifier`` compute their first layers folded (:mod:`neurofm.layers.fused`) and the
CNN-LSTM's input projection in one product. Each is compared here, on real EEG windows, with the
plain computation of the same modules (written out below as the models computed it before),
in eval mode without gradients, and in train mode with the gradients of every parameter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurofm.layers.fused import (
    channels_last_stack,
    embedded_conv,
    pointwise_then_conv,
    single_channel_conv,
)
from neurofm.registry import MODELS, create

TOL = 1e-5
N_CHANS, N_TIMES = 64, 160  # 1 s of the EEGBCI recording at 160 Hz


@pytest.fixture(scope="module")
def eeg(shared_data) -> torch.Tensor:
    """Two 1 s windows (2, 64, 160) of real EEG (EEGBCI S001 run 4), robustly scaled."""
    import mne

    path = shared_data / "eegbci_S001" / "S001R04.edf"
    raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
    x = raw.get_data(start=1600, stop=1600 + 2 * N_TIMES)[:N_CHANS]
    x = x - np.median(x, axis=1, keepdims=True)
    x = np.clip(x / np.quantile(np.abs(x), 0.99, axis=1, keepdims=True), -1.0, 1.0)
    windows = x.reshape(N_CHANS, 2, N_TIMES).transpose(1, 0, 2)
    return torch.from_numpy(np.ascontiguousarray(windows)).float()


def mu_law_codes(x: torch.Tensor, levels: int) -> torch.Tensor:
    mu = levels - 1
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return torch.round((y + 1) / 2 * mu).long()


# --- the layer-by-layer computations the folded ones replace ---------------------------------


def _univariate_tail(model: nn.Module, h: torch.Tensor) -> torch.Tensor:
    b, c, d, t = h.shape
    features = model.temporal(h.reshape(b * c, d, t)).mean(dim=-1).view(b, c, d)
    features = model.dropout(features)
    ids = torch.arange(c).expand(b, c)
    logits = torch.einsum("bcd,bcdk->bk", features, model.readout[ids]) / math.sqrt(c)
    return logits + model.bias


def plain_cnn_univariate(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, c, t = x.shape
    return _univariate_tail(model, model.input(x.reshape(b * c, 1, t)).view(b, c, -1, t))


def plain_cnn_univariate_quantized(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _univariate_tail(model, model.code(x).permute(0, 1, 3, 2))


def plain_classifier_quantized(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, c, t = x.shape
    channel = model.channel(torch.arange(c).expand(b, c))
    h = (model.code(x) + channel[:, :, None]).view(b * c, t, -1).transpose(1, 2)
    features = model.encoder(h).mean(dim=-1).view(b, c, -1)
    return model.head(model.mlp(features + channel).mean(dim=1))


def plain_cnnlstm_classifier(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, c, t = x.shape
    h = model.pool(F.gelu(model.conv(x.reshape(b * c, 1, t))))
    _, (state, _) = model.lstm(h.view(b, c * h.shape[1], -1).transpose(1, 2))
    return model.head(model.dropout(state[-1]))


CASES = {
    "cnn_univariate": (plain_cnn_univariate, {}),
    "cnn_univariate_quantized": (plain_cnn_univariate_quantized, {}),
    "classifier_quantized": (plain_classifier_quantized, {}),
    "cnnlstm_classifier": (plain_cnnlstm_classifier, {}),
    "cnnlstm_classifier-2layers": (plain_cnnlstm_classifier, {"n_layers": 2, "dropout": 0.2}),
}


def _build(case: str) -> tuple[nn.Module, object]:
    name = case.split("-")[0]
    plain, extra = CASES[case]
    torch.manual_seed(0)
    model = create(MODELS, {"name": name, "preset": "small", "n_chans": N_CHANS, **extra})
    return model, plain


def _inputs(model: nn.Module, eeg: torch.Tensor) -> torch.Tensor:
    if "quantized" in model.__class__.__name__.lower():
        return mu_law_codes(eeg, model.config.vocab_size)
    return eeg


@pytest.mark.parametrize("case", sorted(CASES))
def test_eval_output_equals_the_plain_computation(case, eeg):
    model, plain = _build(case)
    x = _inputs(model.eval(), eeg)
    with torch.no_grad():
        fast, slow = model(x).logits, plain(model, x)
    assert fast.shape == slow.shape == (2, model.config.n_classes)
    assert torch.allclose(fast, slow, atol=TOL, rtol=0), (fast - slow).abs().max()


@pytest.mark.parametrize("case", sorted(CASES))
def test_train_output_and_gradients_equal_the_plain_computation(case, eeg):
    model, plain = _build(case)
    x = _inputs(model.train(), eeg)
    if case.endswith("2layers"):  # the LSTM's own dropout draws differently: compare without
        model.lstm.dropout = 0.0
    torch.manual_seed(1)  # the same dropout masks for both
    fast = model(x).logits
    torch.manual_seed(1)
    slow = plain(model, x)
    assert torch.allclose(fast, slow, atol=TOL, rtol=0), (fast - slow).abs().max()
    params = [p for p in model.parameters() if p.requires_grad]
    weights = torch.randn_like(fast)
    fast_grads = torch.autograd.grad((fast * weights).sum(), params)
    slow_grads = torch.autograd.grad((slow * weights).sum(), params)
    for p, a, b in zip(params, fast_grads, slow_grads):
        assert torch.allclose(a, b, atol=TOL, rtol=1e-4), (p.shape, (a - b).abs().max())


# --- the folds on their own, over awkward geometries -----------------------------------------

GEOMETRIES = [(7, 2, 3), (5, 1, 2), (4, 1, 2), (3, 3, 0), (6, 2, 1)]  # kernel, stride, padding


@pytest.mark.parametrize("kernel,stride,padding", GEOMETRIES)
def test_folds_equal_conv1d_on_real_eeg(kernel, stride, padding, eeg):
    torch.manual_seed(0)
    x = eeg.reshape(-1, N_TIMES)[:40, :37]  # 40 real sequences of an odd length
    weight, bias = torch.randn(6, kernel), torch.randn(6)
    want = F.conv1d(x[:, None], weight[:, None], bias, stride=stride, padding=padding)
    got = single_channel_conv(x, weight, bias, stride, padding)
    assert torch.allclose(got, want, atol=TOL)

    conv = nn.Conv1d(5, 6, kernel, stride=stride, padding=padding)
    for pointwise in (nn.Conv1d(1, 5, 1), nn.Conv1d(1, 5, 1, bias=False)):
        want = conv(pointwise(x[:, None]))
        assert torch.allclose(pointwise_then_conv(x, pointwise, conv), want, atol=TOL)

    codes = mu_law_codes(x, 16)
    codes_table, channel_table = torch.randn(16, 5), torch.randn(40, 5)
    ids = torch.arange(40).flip(0)
    want = conv((codes_table[codes] + channel_table[ids][:, None]).transpose(1, 2))
    got = embedded_conv(codes, codes_table, conv, channel_table, ids)
    assert torch.allclose(got, want, atol=TOL)
    want = conv(codes_table[codes].transpose(1, 2))
    assert torch.allclose(embedded_conv(codes, codes_table, conv), want, atol=TOL)

    stack = nn.Sequential(conv, nn.GELU(), nn.Conv1d(6, 4, 3, stride=2, padding=1), nn.GELU())
    h = torch.randn(40, 5, 37)
    with torch.no_grad():  # the in-place GELU path
        assert torch.allclose(channels_last_stack(h, stack), stack(h), atol=TOL)


def test_folds_reject_what_they_do_not_cover():
    x = torch.zeros(2, 10)
    with pytest.raises(ValueError, match="dilation 1"):
        pointwise_then_conv(x, nn.Conv1d(1, 3, 1), nn.Conv1d(3, 3, 3, dilation=2))
    with pytest.raises(ValueError, match="too few"):
        single_channel_conv(x, torch.zeros(3, 15), None, 1, 0)
    with pytest.raises(ValueError, match="ids of shape"):
        embedded_conv(x.long(), torch.zeros(4, 3), nn.Conv1d(3, 3, 3), torch.zeros(5, 3))
