"""What each user has rated ("seen") and liked, in model indices: the one definition.

A :class:`Recommender` leaves a user's seen items out of their recommendations
and explains with their liked ones. Which ratings count depends on where the
recommender came from:

- built from a learner (a notebook): the training ratings;
- loaded for serving (recsys.serving.loading, from the version's serving snapshot or
  ``from_snapshot`` of every rating): every rating the database holds, so an item
  rated after training, or held out of it, is never offered.

Either way, feedback received since is added with :meth:`Interactions.add` (and
ratings deleted since taken out with :meth:`Interactions.remove`), and counts from the
next call. The ratings themselves are kept compressed by row
(CSR: the items of user ``u`` are ``indices[indptr[u]:indptr[u + 1]]``, with a
liked flag beside each); additions since live in a small per-user overlay.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from recsys.data.ids import LIKED_AT, IdMap
from recsys.data.ratings import RatingsTable, latest_write, read_ratings


@dataclass(frozen=True)
class RatingsSnapshot:
    """Every rating in the database, with the number of the latest write it includes.

    Read once, it seeds the seen items of every model a worker loads together.
    """

    through: int
    table: RatingsTable

    @classmethod
    def read(cls, engine: Engine) -> RatingsSnapshot:
        through = latest_write(engine)  # read first: a later write is re-read, never missed
        return cls(through, read_ratings(engine))


@dataclass(eq=False)
class Interactions:
    """Each user's rated items (CSR) and which of them they liked, plus later feedback."""

    indptr: np.ndarray  # (n_users + 1,) int64
    indices: np.ndarray  # (n_ratings,) item indices (int64, or int32 from a snapshot)
    liked_flags: np.ndarray  # (n_ratings,) bool: rated LIKED_AT or more
    n_items: int
    # Loaded from the database: the number of the latest write it includes (see
    # recsys.data.ratings.read_rating_changes); later writes are folded in with add().
    through: int = 0
    # Feedback since: user -> {item: liked, or None where the rating was deleted}; it
    # overrides the CSR for that pair.
    _added: dict[int, dict[int, bool | None]] = field(default_factory=dict, repr=False)
    _item_counts: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def from_ratings(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray | None,
        n_users: int,
        n_items: int,
    ) -> Interactions:
        """From parallel arrays of model indices (and ratings: None means none liked)."""
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        order = np.lexsort((items, users))
        counts = np.bincount(users, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        liked = (
            np.zeros(len(items), dtype=bool)
            if ratings is None
            else np.asarray(ratings)[order] >= LIKED_AT
        )
        return cls(indptr, items[order], liked, n_items)

    @classmethod
    def from_snapshot(
        cls, snapshot: RatingsSnapshot, user_map: IdMap, item_map: IdMap
    ) -> Interactions:
        """The ratings of ``snapshot`` of a user and an item both in the maps."""
        table = snapshot.table
        users = _lookup(table.user_map, user_map)[table.users.numpy()]
        items = _lookup(table.item_map, item_map)[table.items.numpy()]
        known = (users >= 0) & (items >= 0)
        interactions = cls.from_ratings(
            users[known], items[known], table.ratings.numpy()[known], len(user_map), len(item_map)
        )
        interactions.through = snapshot.through
        return interactions

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def seen(self, user: int) -> np.ndarray:
        """The items ``user`` has rated (model indices, unordered)."""
        base = self.indices[self.indptr[user] : self.indptr[user + 1]]
        added = self._added_of(user)
        if not added:
            return base
        rated = [item for item, liked in added.items() if liked is not None]
        deleted = [item for item, liked in added.items() if liked is None]
        seen = np.union1d(base, np.asarray(rated, dtype=np.int64))
        return np.setdiff1d(seen, np.asarray(deleted, dtype=np.int64)) if deleted else seen

    def liked(self, user: int) -> np.ndarray:
        """The items ``user`` rated LIKED_AT or more (feedback since included)."""
        start, end = self.indptr[user], self.indptr[user + 1]
        base = self.indices[start:end][self.liked_flags[start:end]]
        added = self._added_of(user)
        if not added:
            return base
        keep = base[[item not in added for item in base.tolist()]]
        extra = [item for item, liked in added.items() if liked]
        return np.concatenate([keep, np.asarray(extra, dtype=np.int64)])

    def _added_of(self, user: int) -> dict[int, bool | None]:
        """A copy of the user's feedback since loading (another thread may be adding)."""
        if user not in self._added:
            return {}
        with self._lock:
            return dict(self._added[user])

    def item_counts(self) -> np.ndarray:
        """How many users rated each item (n_items,), as of loading (counted once)."""
        if self._item_counts is None:
            self._item_counts = np.bincount(self.indices, minlength=self.n_items)
        return self._item_counts

    def add(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> None:
        """Feedback since loading; a later rating of the same pair replaces the earlier."""
        with self._lock:
            for user, item, rating in zip(
                users.tolist(), items.tolist(), ratings.tolist(), strict=True
            ):
                self._added.setdefault(user, {})[item] = rating >= LIKED_AT

    def remove(self, users: np.ndarray, items: np.ndarray) -> None:
        """Ratings deleted since loading: no longer seen or liked (until rated again)."""
        with self._lock:
            for user, item in zip(users.tolist(), items.tolist(), strict=True):
                self._added.setdefault(user, {})[item] = None


def _lookup(source: IdMap, target: IdMap) -> np.ndarray:
    """For each index of ``source``, the index of the same external id in ``target`` or -1.

    Ids compare as text: the database stores every id as text, a frame may hold ints.
    """
    target_index = pd.Index(pd.Series(target.ids, dtype=object).astype(str))
    return target_index.get_indexer(pd.Series(source.ids, dtype=object).astype(str)).astype(
        np.int64
    )
