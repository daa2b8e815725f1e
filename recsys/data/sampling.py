"""Training batches for ranking: each observed (user, item) with a sampled negative item.

A batch is ``(x, target)`` with ``x[:, 0]`` users, ``x[:, 1]`` the items they chose
and ``x[:, 2]`` items drawn at random among those the user never chose (draws
that hit one of the user's items are redrawn), so BPR-style losses read it
through the same learner as the rating models.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class NegativeSampledBatches:
    """Positive pairs in a fresh order each epoch, each with one negative item."""

    def __init__(
        self, users: np.ndarray, items: np.ndarray, n_items: int, batch_size: int, seed: int = 0
    ) -> None:
        self.users = np.asarray(users, dtype=np.int64)
        self.items = np.asarray(items, dtype=np.int64)
        self.n_items = n_items
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        # Every (user, item) the user chose, as one sorted key, for membership tests.
        self.positive_keys = np.unique(self.users * n_items + self.items)

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    @property
    def n_rows(self) -> int:
        return len(self.users)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        found = np.searchsorted(self.positive_keys, keys)
        found = np.minimum(found, len(self.positive_keys) - 1)
        return self.positive_keys[found] == keys

    def sample_negatives(self, users: np.ndarray, rounds: int = 10) -> np.ndarray:
        """Uniform items the users never chose.

        Redrawing clashes is cheap when users chose few items; the rows still
        clashing after ``rounds`` draw from their user's complement directly. A user
        who chose every item has no negative and keeps a positive.
        """
        negatives = self.rng.integers(0, self.n_items, len(users))
        for _ in range(rounds):
            clash = self.is_positive(users, negatives)
            if not clash.any():
                return negatives
            negatives[clash] = self.rng.integers(0, self.n_items, int(clash.sum()))
        for row in np.flatnonzero(self.is_positive(users, negatives)):
            chosen = (
                self.positive_keys[
                    np.searchsorted(
                        self.positive_keys, users[row] * self.n_items
                    ) : np.searchsorted(self.positive_keys, (users[row] + 1) * self.n_items)
                ]
                - users[row] * self.n_items
            )
            free = np.setdiff1d(np.arange(self.n_items), chosen, assume_unique=True)
            if len(free):
                negatives[row] = self.rng.choice(free)
        return negatives

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.rng.permutation(len(self.users))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            users, items = self.users[rows], self.items[rows]
            x = np.stack([users, items, self.sample_negatives(users)], axis=1)
            yield torch.from_numpy(x), torch.zeros(len(rows))
