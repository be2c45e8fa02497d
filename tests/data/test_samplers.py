"""Samplers: seeded epochs, equal rank shares, documented padding, exact mid-epoch resume."""

from __future__ import annotations

import numpy as np
import pytest

from neurofm.data.samplers import RandomWindowSampler, SequentialWindowSampler


def test_random_order_is_seeded_and_changes_with_the_epoch():
    a, b = RandomWindowSampler(50, seed=7), RandomWindowSampler(50, seed=7)
    first = list(a)
    assert first == list(b) and sorted(first) == list(range(50))
    assert first != list(RandomWindowSampler(50, seed=8))
    a.set_epoch(1)
    second = list(a)
    assert second != first and sorted(second) == list(range(50))
    assert list(SequentialWindowSampler(5)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("n_items,world_size", [(10, 3), (12, 4), (2, 3), (7, 1)])
def test_ranks_get_equal_shares_covering_everything_with_padding_counted(n_items, world_size):
    shares = [
        list(RandomWindowSampler(n_items, seed=1, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    assert len({len(s) for s in shares}) == 1
    merged = [i for s in shares for i in s]
    assert set(merged) == set(range(n_items))
    n_padded = RandomWindowSampler(n_items, seed=1, rank=0, world_size=world_size).n_padded
    assert n_padded == (-n_items) % world_size
    assert len(merged) == n_items + n_padded


def test_drop_last_leaves_the_tail_out_and_counts_it():
    shares = [
        list(SequentialWindowSampler(10, rank=r, world_size=3, drop_last=True)) for r in range(3)
    ]
    assert [len(s) for s in shares] == [3, 3, 3]
    assert sorted(i for s in shares for i in s) == list(range(9))
    assert SequentialWindowSampler(10, rank=0, world_size=3, drop_last=True).n_dropped == 1
    with pytest.raises(ValueError, match="rank"):
        SequentialWindowSampler(10, rank=3, world_size=3)


def test_resume_mid_epoch_continues_with_the_next_index():
    reference = RandomWindowSampler(40, seed=3, rank=1, world_size=2)
    reference.set_epoch(2)
    full = list(reference)
    interrupted = RandomWindowSampler(40, seed=3, rank=1, world_size=2)
    interrupted.set_epoch(2)
    iterator = iter(interrupted)
    seen = [next(iterator) for _ in range(12)]  # the loader ran ahead: training used only 8
    state = interrupted.state_dict(consumed=8)
    assert seen[:8] == full[:8] and state["position"] == 8
    resumed = RandomWindowSampler(40, seed=3, rank=1, world_size=2)
    resumed.load_state_dict(state)
    assert full[:8] + list(resumed) == full
    resumed.set_epoch(3)
    assert len(list(resumed)) == 20  # a new epoch starts at its first index
    with pytest.raises(ValueError, match="seed"):
        RandomWindowSampler(40, seed=4, rank=1, world_size=2).load_state_dict(state)
    assert np.array_equal(reference.epoch_indices(), np.array(full))
