"""Ratings as a collaborative data set: index tensors, id maps, seen items.

Id maps are built from the training rows only. A validation row whose user or
item never occurs in training cannot be scored by an id-based model, so it is
left out of validation (``CollabData.n_valid_dropped`` counts them) instead of
being scored with an untrained embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from sqlalchemy import Engine

from recsys.collab.baseline import RatingBaseline
from recsys.collab.interactions import Interactions
from recsys.data.ids import IdMap
from recsys.data.loaders import DataLoaders, TensorBatches
from recsys.data.ratings import RatingsTable, read_ratings
from recsys.data.splits import Split, cutoff_split, random_split, temporal_split, time_split

DEFAULT_BATCH_SIZE = 512
# Large data sets get large batches: per-row cost dominates there, and 4096-row
# batches still give thousands of steps per epoch.
LARGE_DATA_ROWS, LARGE_BATCH_SIZE = 1_000_000, 4096
# What the rating dot model chooses from, on the hold-out, from LARGE_DATA_ROWS: bigger
# batches are faster per rating (benchmarks/scale.py), kept only where the RMSE holds.
LARGE_BATCH_SIZES = (LARGE_BATCH_SIZE, 16_384)
SplitName = Literal["random", "temporal", "time", "cutoff"]


def default_batch_size(n_train: int) -> int:
    """512 for MovieLens-sized data, 4096 from a million training ratings up."""
    return LARGE_BATCH_SIZE if n_train >= LARGE_DATA_ROWS else DEFAULT_BATCH_SIZE


@dataclass
class CollabData:
    """Training and validation ratings as index tensors, with the id maps."""

    dls: DataLoaders[TensorBatches]
    user_map: IdMap
    item_map: IdMap
    seen: Interactions  # the training ratings
    n_valid_dropped: int = 0
    # Unix seconds of each training / validation row, when the ratings came with times.
    train_times: np.ndarray | None = None
    valid_times: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    def with_batch_size(self, batch_size: int, seed: int) -> CollabData:
        """The same data, trained in batches of ``batch_size`` shuffled from ``seed`` (as
        the constructors shuffle them); validation unchanged."""
        batches = TensorBatches(self.dls.train.tensors, batch_size, shuffle=True, seed=seed)
        return replace(self, dls=DataLoaders(batches, self.dls.valid))

    @cached_property
    def rating_baseline(self) -> RatingBaseline:
        """The training ratings' mean and damped user and item offsets (for unseen ids)."""
        x, y = (t.cpu().numpy() for t in self.dls.train.tensors)
        return RatingBaseline.from_ratings(x[:, 0], x[:, 1], y, self.n_users, self.n_items)

    @classmethod
    def from_df(
        cls,
        ratings: pd.DataFrame,
        user_col: str = "user_id",
        item_col: str = "item_id",
        rating_col: str = "rating",
        valid_pct: float = 0.2,
        seed: int = 42,
        valid_df: pd.DataFrame | None = None,
        batch_size: int | None = None,
    ) -> CollabData:
        """From a frame; validation is a seeded random ``valid_pct`` of rows, or ``valid_df``."""
        if valid_df is not None:
            split = Split(
                np.arange(len(ratings)), np.arange(len(ratings), len(ratings) + len(valid_df))
            )
            ratings = pd.concat([ratings, valid_df], ignore_index=True)
        else:
            split = random_split(len(ratings), valid_pct, seed)
        user_codes, user_ids = pd.factorize(ratings[user_col], sort=True)
        item_codes, item_ids = pd.factorize(ratings[item_col], sort=True)
        return cls._build(
            user_codes,
            item_codes,
            ratings[rating_col].to_numpy(np.float32),
            IdMap("user", np.asarray(user_ids, dtype=object)),
            IdMap("item", np.asarray(item_ids, dtype=object)),
            split,
            batch_size,
            seed,
        )

    @classmethod
    def from_table(
        cls,
        table: RatingsTable,
        valid_pct: float = 0.2,
        seed: int = 42,
        split: SplitName = "random",
        batch_size: int | None = None,
    ) -> CollabData:
        """From ratings read out of the database, split at random, per user in time
        (``temporal``), at one cutoff in time (``time``), or per user around one cutoff
        (``cutoff``); see recsys.data.splits."""
        timestamps = table.timestamps.numpy()
        if split == "random":
            rows = random_split(len(table), valid_pct, seed)
        elif split == "temporal":
            rows = temporal_split(table.users.numpy(), timestamps, valid_pct)
        elif split == "cutoff":
            rows = cutoff_split(table.users.numpy(), timestamps, valid_pct)
        elif split == "time":
            rows = time_split(timestamps, valid_pct)
        else:
            raise ValueError(f"split must be random, temporal, time or cutoff, not {split!r}")
        return cls._build(
            table.users.numpy(),
            table.items.numpy(),
            table.ratings.numpy(),
            table.user_map,
            table.item_map,
            rows,
            batch_size,
            seed,
            timestamps,
        )

    @classmethod
    def from_database(cls, engine: Engine, **kwargs: Any) -> CollabData:
        """Read every rating from the database, then as :meth:`from_table`."""
        return cls.from_table(read_ratings(engine), **kwargs)

    @classmethod
    def _build(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray,
        user_map: IdMap,
        item_map: IdMap,
        split: Split,
        batch_size: int | None,
        seed: int,
        timestamps: np.ndarray | None = None,
    ) -> CollabData:
        # Re-index on training rows only; validation rows with unseen ids are dropped.
        user_index, user_map = _reindex(users, split.train, user_map)
        item_index, item_map = _reindex(items, split.train, item_map)
        valid = split.valid[(user_index[split.valid] >= 0) & (item_index[split.valid] >= 0)]
        batch_size = batch_size or default_batch_size(len(split.train))

        def batches(rows: np.ndarray, shuffle: bool) -> TensorBatches:
            x = torch.from_numpy(np.stack([user_index[rows], item_index[rows]], axis=1))
            y = torch.from_numpy(ratings[rows].astype(np.float32))
            return TensorBatches((x, y), batch_size, shuffle=shuffle, seed=seed)

        train_users, train_items = user_index[split.train], item_index[split.train]
        return cls(
            dls=DataLoaders(batches(split.train, True), batches(valid, False)),
            user_map=user_map,
            item_map=item_map,
            seen=Interactions.from_ratings(
                train_users, train_items, ratings[split.train], len(user_map), len(item_map)
            ),
            n_valid_dropped=len(split.valid) - len(valid),
            train_times=None if timestamps is None else timestamps[split.train],
            valid_times=None if timestamps is None else timestamps[valid],
        )


def _reindex(codes: np.ndarray, train_rows: np.ndarray, id_map: IdMap) -> tuple[np.ndarray, IdMap]:
    """New contiguous codes for the ids that occur in training; -1 for the rest."""
    used = np.unique(codes[train_rows])
    lookup = np.full(len(id_map), -1, dtype=np.int64)
    lookup[used] = np.arange(len(used))
    return lookup[codes], IdMap(id_map.kind, id_map.ids[used])
