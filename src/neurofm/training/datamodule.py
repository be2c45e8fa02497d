"""FitDataModule: windows of a prepared store for training, with a resumable data position.

The train loader draws indices from the shared seeded :class:`~neurofm.data.samplers.WindowSampler`
(distributed-aware: each rank gets its share, Lightning's own sampler replacement is off) and
counts the batches it has handed to the training loop, so that a checkpoint records exactly how
far into the epoch training got and a resumed run continues with the next batch. Loaders get
their own seeded ``torch.Generator`` so that creating an iterator never draws from the global
RNG (which dropout uses).

With a tokenizer, ``x`` (and ``target``) are encoded to int64 codes on the device after the
batch is moved there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Sampler

from neurofm.data.collate import collate
from neurofm.data.samplers import SequentialWindowSampler, WindowSampler
from neurofm.data.store import PreparedStore
from neurofm.data.windows import WindowDataset
from neurofm.tokenizers.base import Tokenizer
from neurofm.training.config import DataConfig
from neurofm.training.data import build_dataset
from neurofm.types import Batch


class _ResumePoint(Sampler[int]):
    """Wraps a WindowSampler; applies a loaded position when iteration actually starts.

    Lightning calls ``set_epoch`` after creating the loader iterator on resume; the loaded
    position is therefore applied in ``__iter__`` (which runs when the first index is drawn).
    """

    def __init__(self, sampler: WindowSampler) -> None:
        self.sampler = sampler
        self.pending: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        if self.pending is not None:
            self.sampler.load_state_dict(self.pending)
            self.pending = None
        return iter(self.sampler)


class ResumableLoader(DataLoader):
    """A DataLoader whose ``state_dict`` is the training loop's position in the epoch.

    Lightning saves ``state_dict()`` in checkpoints and calls ``load_state_dict`` on resume.
    """

    def __init__(
        self,
        dataset: WindowDataset,
        *,
        sampler: WindowSampler,
        batch_size: int,
        drop_last: bool,
        num_workers: int,
        seed: int,
        collate_fn: Any = collate,
    ) -> None:
        self.resume_point = _ResumePoint(sampler)
        super().__init__(
            dataset,
            batch_sampler=BatchSampler(self.resume_point, batch_size, drop_last),
            num_workers=num_workers,
            collate_fn=collate_fn,
            generator=torch.Generator().manual_seed(seed),
            persistent_workers=False,
        )
        self.window_batch_size = batch_size
        self.batches_done = 0
        self._resume_batches = 0

    def __iter__(self) -> Iterator[Batch]:
        self.batches_done, self._resume_batches = self._resume_batches, 0
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        sampler = self.resume_point.sampler
        consumed = min(self.batches_done * self.window_batch_size, len(sampler))
        return {"sampler": sampler.state_dict(consumed=consumed), "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.resume_point.pending = dict(state["sampler"])
        self._resume_batches = int(state["batches_done"])


class FitDataModule(pl.LightningDataModule):
    """Train/val loaders over a prepared store, optionally tokenized.

    Parameters
    ----------
    store : PreparedStore
        The prepared dataset.
    data : DataConfig
        The ``data`` section.
    seed : int
        Seed of the shuffle order and of the loaders' generators.
    tokenizer : Tokenizer, optional
        A fitted tokenizer; batches then carry its int64 codes in ``x``.
    """

    def __init__(
        self,
        *,
        store: PreparedStore,
        data: DataConfig,
        seed: int,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.data = data
        self.seed = seed
        self.tokenizer = tokenizer
        self.collate = store.collate() if hasattr(store, "collate") else collate
        self.train_dataset = build_dataset(store, data, data.train_split)
        self.val_dataset = (
            None if data.val_split is None else build_dataset(store, data, data.val_split)
        )

    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        return (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)

    def train_dataloader(self) -> ResumableLoader:
        rank, world_size = self._ranks()
        sampler = WindowSampler(
            len(self.train_dataset),
            shuffle=self.data.shuffle,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            drop_last=self.data.drop_last and world_size > 1,
        )
        return ResumableLoader(
            self.train_dataset,
            sampler=sampler,
            batch_size=self.data.batch_size,
            drop_last=self.data.drop_last,
            num_workers=self.data.num_workers,
            seed=self.seed,
            collate_fn=self.collate,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dataset is None:
            return []
        rank, world_size = self._ranks()
        sampler = SequentialWindowSampler(len(self.val_dataset), rank=rank, world_size=world_size)
        return DataLoader(
            self.val_dataset,
            sampler=sampler,
            batch_size=self.data.batch_size,
            num_workers=self.data.num_workers,
            collate_fn=self.collate,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def transfer_batch_to_device(
        self, batch: Batch, device: torch.device, dataloader_idx: int
    ) -> Batch:
        return batch.to(device)

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        if self.tokenizer is None:
            return batch
        tokenizer = self.tokenizer.to(batch.x.device)
        batch.x = tokenizer.encode(batch.x).codes
        if batch.target is not None:
            batch.target = tokenizer.encode(batch.target).codes
        return batch
