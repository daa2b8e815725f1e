"""In-memory batches: shuffling per epoch, and shards for data-parallel ranks."""

from __future__ import annotations

import torch

from recsys.data.loaders import TensorBatches


def rows_of(batches: TensorBatches) -> list[list[int]]:
    return [batch[0].tolist() for batch in batches]


def test_each_epoch_is_a_new_permutation_of_every_row() -> None:
    batches = TensorBatches((torch.arange(10), torch.zeros(10)), batch_size=4, shuffle=True)
    first, second = rows_of(batches), rows_of(batches)
    assert [len(b) for b in first] == [4, 4, 2]
    flat = [[row for batch in epoch for row in batch] for epoch in (first, second)]
    assert sorted(flat[0]) == sorted(flat[1]) == list(range(10))
    assert first != second


def test_shards_split_every_global_batch_between_ranks() -> None:
    full = TensorBatches((torch.arange(16), torch.zeros(16)), batch_size=4, shuffle=True, seed=3)
    whole = rows_of(TensorBatches((torch.arange(16), torch.zeros(16)), 4, shuffle=True, seed=3))
    shards = [full.sharded(rank, 2) for rank in (0, 1)]
    for shard in shards:  # a shared generator would advance twice; give each rank its own seed
        shard.generator = torch.Generator().manual_seed(3)
    per_rank = [rows_of(shard) for shard in shards]

    assert [len(shard) for shard in shards] == [4, 4]
    assert all(len(batch) == 2 for batches in per_rank for batch in batches)
    for step, global_batch in enumerate(whole):
        assert sorted(per_rank[0][step] + per_rank[1][step]) == sorted(global_batch)
