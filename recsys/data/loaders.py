"""Batches for the learner: slices of tensors held on the device, or a DataLoader.

A batch is a tuple ``(*inputs, target)``; the learner calls ``model(*inputs)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import torch


class TensorBatches:
    """Mini-batches sliced from tensors already in (device) memory.

    No per-sample Python work: each epoch draws one permutation and gathers the
    tensors once; batches are then contiguous views. This is the fast path for
    ratings and tabular data.
    """

    def __init__(
        self,
        tensors: tuple[torch.Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        lengths = {len(t) for t in tensors}
        if len(lengths) != 1:
            raise ValueError(f"tensors have different lengths: {sorted(lengths)}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)
        self.shard: tuple[int, int] | None = None  # (rank, world size) when data-parallel

    @property
    def n_rows(self) -> int:
        return len(self.tensors[0])

    def __len__(self) -> int:
        rows = self.n_rows // self.shard[1] if self.shard is not None else self.n_rows
        full, rest = divmod(rows, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def to(self, device: torch.device | str) -> TensorBatches:
        """The same batches, with the tensors moved to ``device`` once."""
        moved = TensorBatches(
            tuple(t.to(device) for t in self.tensors),
            self.batch_size,
            self.shuffle,
            drop_last=self.drop_last,
        )
        moved.generator = self.generator
        moved.shard = self.shard
        return moved

    def sharded(self, rank: int, world_size: int) -> TensorBatches:
        """This rank's share for data-parallel training.

        Every rank draws the same permutation each epoch (same seed) and keeps every
        ``world_size``-th row of it, cut to equal lengths so ranks step together;
        the batch is split too, so the global batch stays the size asked for.
        """
        shard = TensorBatches(
            self.tensors,
            max(self.batch_size // world_size, 1),
            self.shuffle,
            drop_last=self.drop_last,
        )
        shard.generator = self.generator
        shard.shard = (rank, world_size)
        return shard

    def _order(self) -> torch.Tensor | None:
        if self.shuffle:
            order = torch.randperm(self.n_rows, generator=self.generator)
        elif self.shard is not None:
            order = torch.arange(self.n_rows)
        else:
            return None
        if self.shard is not None:
            rank, world_size = self.shard
            order = order[rank::world_size][: self.n_rows // world_size]
        return order.to(self.tensors[0].device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        tensors = self.tensors
        order = self._order()
        if order is not None:
            tensors = tuple(t[order] for t in tensors)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield tuple(t[start : start + self.batch_size] for t in tensors)


B = TypeVar("B")  # the kind of batches: TensorBatches, NegativeSampledBatches, a DataLoader


@dataclass
class DataLoaders(Generic[B]):
    """The training and validation batches a learner fits on: ``DataLoaders[TensorBatches]``
    for ratings and tables, ``DataLoaders[DataLoader]`` for images."""

    train: B
    valid: B

    def to(self, device: torch.device | str) -> DataLoaders[B]:
        """Move in-memory batches to ``device``; DataLoader batches move per batch."""

        def move(batches: B) -> B:
            if isinstance(batches, TensorBatches):
                return cast(B, batches.to(device))
            return batches

        return DataLoaders(move(self.train), move(self.valid))


def to_device(batch: Iterable[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Move one batch to ``device`` (a no-op for tensors already there)."""
    return tuple(t.to(device, non_blocking=True) for t in batch)
