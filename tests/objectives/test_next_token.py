"""The next_token objective: shift by one, bits per channel-sample, accuracy, aux losses."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neurofm.objectives.base import LN2
from neurofm.registry import MODELS, OBJECTIVES, create
from neurofm.types import Batch, ModelOutput, ModelSpec

# what the test doubles below are (they are not registered models)
COPY_SPEC = ModelSpec(
    inputs="channel_codes", outputs="logits", causal=True, context=("subject", "condition")
)


class _Copy(nn.Module):
    """Predicts that the next code equals ``x + 1`` (mod V) with a fixed confidence."""

    def __init__(self, vocab: int, aux: float = 0.0) -> None:
        super().__init__()
        self.vocab, self.aux = vocab, aux
        self.seen: dict = {}

    def forward(self, x, *, subject=None, condition=None):
        self.seen = {"x": x, "subject": subject, "condition": condition}
        logits = torch.zeros(*x.shape, self.vocab)
        logits.scatter_(-1, ((x + 1) % self.vocab).unsqueeze(-1), 5.0)
        aux = {"balance": torch.tensor(self.aux)} if self.aux else {}
        return ModelOutput(logits=logits, aux_losses=aux)


def _objective(**cfg):
    objective = create(OBJECTIVES, {"name": "next_token", **cfg})
    return lambda model, batch: objective(model, batch, spec=COPY_SPEC)


def test_targets_are_shifted_by_one_and_metrics_are_exact():
    x = torch.arange(12).reshape(1, 2, 6) % 8  # each code is the previous + 1
    model = _Copy(8)
    cond = torch.arange(6).reshape(1, 6)
    out = _objective()(
        model,
        Batch(
            x=x,
            context={
                "subject": torch.tensor([0]),
                "condition": cond,
                "channel_ids": torch.tensor([[0, 1]]),  # not in the spec: not passed
            },
        ),
    )
    assert torch.equal(model.seen["x"], x[..., :-1])
    assert torch.equal(model.seen["condition"], cond[:, :-1])  # sliced like x
    assert torch.equal(model.seen["subject"], torch.tensor([0]))
    expected_ce = -math.log(math.exp(5.0) / (math.exp(5.0) + 7))
    assert out.n_items == 10
    assert out.metrics["accuracy"] == 1.0
    torch.testing.assert_close(out.metrics["cross_entropy"], torch.tensor(expected_ce))
    torch.testing.assert_close(
        out.metrics["bits_per_channel_sample"], torch.tensor(expected_ce / LN2)
    )


def test_aux_losses_are_added_and_logged():
    x = torch.arange(6).reshape(1, 1, 6)
    plain = _objective()(_Copy(8), Batch(x=x))
    with_aux = _objective()(_Copy(8, aux=0.25), Batch(x=x))
    torch.testing.assert_close(with_aux.loss, plain.loss + 0.25)
    assert "aux_balance" in with_aux.metrics


def test_flat_token_models_and_label_smoothing():
    torch.manual_seed(0)
    model = create(MODELS, {"name": "gpt_causal", "preset": "tiny"})
    x = torch.randint(0, 64, (2, 9))
    plain = _objective()(model, Batch(x=x))
    smooth = _objective(label_smoothing=0.1)(model, Batch(x=x))
    assert plain.model_output.logits.shape == (2, 8, 64)
    torch.testing.assert_close(plain.metrics["cross_entropy"], smooth.metrics["cross_entropy"])
    assert not torch.allclose(plain.loss, smooth.loss)


def test_explicit_target_is_used_unshifted():
    x = torch.arange(5).reshape(1, 1, 5)
    out = _objective()(_Copy(8), Batch(x=x, target=(x + 1) % 8))
    assert out.metrics["accuracy"] == 1.0 and out.n_items == 5


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        (Batch(x=torch.randn(1, 2, 5)), "integer codes"),
        (Batch(x=torch.zeros(1, 2, 1, dtype=torch.long)), ">= 2 time steps"),
        (Batch(x=torch.full((1, 1, 4), 9)), r"span \[9, 9\] but the model has vocab_size=8"),
    ],
)
def test_bad_batches_are_rejected(batch, match):
    with pytest.raises(ValueError, match=match):
        _objective()(_Copy(8), batch)


def test_bad_config_is_rejected():
    from neurofm.errors import ConfigError

    with pytest.raises(ConfigError, match="label_smoothing"):
        _objective(label_smoothing=1.0)
