"""Channel matching (R7): permuted channels are reordered by name; missing or renamed raise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurofm.data.channels import channel_vocabulary, match_channels
from neurofm.errors import ChannelMismatchError

TRAINED = ["Fz", "Cz", "Pz", "Oz", "C3", "C4"]


class TinyModel(torch.nn.Module):
    """A channel-mixing model: its output depends on which channel sits where."""

    def __init__(self, channels: list[str]) -> None:
        super().__init__()
        self.channels = list(channels)
        self.mix = torch.nn.Conv1d(len(channels), 2, kernel_size=3)

    def forward(
        self,
        x: torch.Tensor,
        channels: list[str],
        *,
        policy: str = "raise",
        aliases: dict[str, str] | None = None,
    ) -> torch.Tensor:
        match = match_channels(
            self.channels, channels, policy=policy, aliases=aliases, where="input"
        )
        return self.mix(match.apply(x))


@pytest.fixture
def model_and_input():
    torch.manual_seed(0)
    return TinyModel(TRAINED).eval(), torch.randn(2, len(TRAINED), 16)


def test_r7_permuted_channels_give_identical_output(model_and_input):
    model, x = model_and_input
    reference = model(x, TRAINED)
    perm = np.random.default_rng(1).permutation(len(TRAINED))
    permuted = model(x[:, perm], [TRAINED[i] for i in perm])
    assert torch.equal(permuted, reference)
    assert not torch.equal(model.mix(x[:, perm]), reference)  # order matters to the model
    extra = torch.cat([x, torch.randn(2, 1, 16)], dim=1)[:, [6, *perm]]
    dropped = model(extra, ["EOG", *[TRAINED[i] for i in perm]], policy="drop_extra")
    assert torch.equal(dropped, reference)


def test_r7_missing_and_renamed_channels_raise_listing_them(model_and_input):
    model, x = model_and_input
    with pytest.raises(ChannelMismatchError) as err:
        model(x[:, :5], TRAINED[:5])
    assert "missing 1 expected channel(s): ['C4']" in str(err.value)
    renamed = ["EEG Fz", *TRAINED[1:]]
    with pytest.raises(ChannelMismatchError) as err:
        model(x, renamed)
    message = str(err.value)
    assert "['Fz']" in message and "'EEG Fz'" in message and "'EEG Fz' -> 'Fz'" in message
    assert torch.equal(model(x, renamed, aliases={"EEG Fz": "Fz"}), model(x, TRAINED))
    with pytest.raises(ChannelMismatchError, match="unexpected"):
        model(torch.randn(2, 7, 16), [*TRAINED, "T7"])


def test_intersect_reports_missing_and_never_pads_with_zeros():
    match = match_channels(TRAINED, ["Oz", "Cz", "X1"], policy="intersect")
    assert match.names == ["Cz", "Oz"] and match.missing == ["Fz", "Pz", "C3", "C4"]
    x = torch.arange(6.0).reshape(1, 3, 2)
    out = match.apply(x)
    assert out.shape == (1, 2, 2)  # two channels out: nothing invented
    assert torch.equal(out, x[:, [1, 0]])
    with pytest.raises(ChannelMismatchError, match="no expected channel"):
        match_channels(TRAINED, ["X1"], policy="intersect")
    with pytest.raises(ChannelMismatchError, match="duplicate"):
        match_channels(TRAINED, ["Fz", "Fz"], policy="intersect")
    with pytest.raises(ValueError, match="policy"):
        match_channels(TRAINED, TRAINED, policy="pad")


def test_channel_vocabulary_is_sorted_union_or_stored():
    manifest = {"recordings": [{"sensors": {"names": ["b", "a"]}}, {"sensors": {"names": ["c"]}}]}
    assert channel_vocabulary(manifest) == {"a": 0, "b": 1, "c": 2}
    manifest["vocabularies"] = {"channel": {"c": 0, "a": 1, "b": 2}}
    assert channel_vocabulary(manifest)["c"] == 0
