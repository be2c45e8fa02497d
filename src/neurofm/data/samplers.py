"""Samplers over window indices: sequential and seeded random, distributed-aware, resumable.

Distributed use: each of ``world_size`` ranks gets the same number of indices. With
``drop_last=False`` (default) the index list is padded by repeating its first indices until its
length is a multiple of ``world_size`` (as ``torch.utils.data.DistributedSampler`` does); the
number of repeated indices is :attr:`WindowSampler.n_padded`. With ``drop_last=True`` the last
``n % world_size`` indices (after shuffling) are left out and counted in :attr:`n_dropped`.
Rank ``r`` takes every ``world_size``-th index starting at ``r``.

Exact resume: :meth:`state_dict` records the epoch and how many indices of the epoch this rank
has consumed; after :meth:`load_state_dict` the next iteration continues with the next index.
A ``DataLoader`` prefetches ahead of the training loop, so the training engine should pass the
count it actually consumed, ``state_dict(consumed=batches_done * batch_size)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


class WindowSampler(torch.utils.data.Sampler[int]):
    """Indices ``0..n_items-1`` for one rank, in order or in a seeded random order per epoch.

    Parameters
    ----------
    n_items : int
        Number of items (``len(dataset)``), > 0.
    shuffle : bool
        Random order, drawn from ``(seed, epoch)``: the same on every rank and every run.
    seed : int
        Seed of the shuffle.
    rank, world_size : int
        This process's rank among ``world_size`` (defaults: the initialised
        ``torch.distributed`` group, else 0 and 1).
    drop_last : bool
        Leave out the tail instead of padding by repetition (see the module docstring).
    """

    def __init__(
        self,
        n_items: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        dist = torch.distributed
        initialised = dist.is_available() and dist.is_initialized()
        self.world_size = int(
            world_size if world_size is not None else dist.get_world_size() if initialised else 1
        )
        self.rank = int(rank if rank is not None else dist.get_rank() if initialised else 0)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, {self.world_size}), got {self.rank}")
        if drop_last and n_items < self.world_size:
            raise ValueError(
                f"drop_last with {n_items} items and {self.world_size} ranks leaves "
                "no item for some rank"
            )
        self.n_items, self.shuffle, self.seed, self.drop_last = n_items, shuffle, seed, drop_last
        self.epoch = 0
        self.position = 0
        if drop_last:
            self.total = n_items - n_items % self.world_size
        else:
            self.total = -(-n_items // self.world_size) * self.world_size
        self.n_padded = max(self.total - n_items, 0)
        self.n_dropped = max(n_items - self.total, 0)

    def __len__(self) -> int:
        """Indices this rank yields in one full epoch."""
        return self.total // self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (the shuffle order); restarts at the epoch's first index."""
        self.epoch = int(epoch)
        self.position = 0

    def epoch_indices(self) -> np.ndarray:
        """All indices of this rank for the current epoch, in order (int64)."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n_items)
        else:
            order = np.arange(self.n_items)
        if self.n_padded:
            order = np.resize(order, self.total)  # repeats from the start
        return order[: self.total][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        indices = self.epoch_indices()
        start = self.position
        for k in range(start, indices.size):
            self.position = k + 1
            yield int(indices[k])
        self.position = 0

    def state_dict(self, *, consumed: int | None = None) -> dict[str, Any]:
        """Resume state: epoch and index position within this rank's epoch.

        Parameters
        ----------
        consumed : int, optional
            Indices of the current epoch actually used by the training loop (default: how many
            this sampler has yielded, which runs ahead of training under DataLoader prefetching).
        """
        position = self.position if consumed is None else int(consumed)
        if not 0 <= position <= len(self):
            raise ValueError(f"consumed must be in [0, {len(self)}], got {position}")
        return {
            "epoch": self.epoch,
            "position": position,
            "seed": self.seed,
            "n_items": self.n_items,
            "world_size": self.world_size,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; the sampler must describe the same data and ranks."""
        for key in ("seed", "n_items", "world_size", "shuffle"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"sampler state has {key}={state[key]!r}, this sampler has "
                    f"{getattr(self, key)!r}; cannot resume exactly"
                )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])


class RandomWindowSampler(WindowSampler):
    """Seeded random order, a new one per epoch (``set_epoch``); see :class:`WindowSampler`."""

    def __init__(
        self,
        n_items: int,
        *,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            n_items, shuffle=True, seed=seed, rank=rank, world_size=world_size, drop_last=drop_last
        )


class SequentialWindowSampler(WindowSampler):
    """Indices in order (evaluation); see :class:`WindowSampler`."""

    def __init__(
        self,
        n_items: int,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            n_items, shuffle=False, rank=rank, world_size=world_size, drop_last=drop_last
        )
