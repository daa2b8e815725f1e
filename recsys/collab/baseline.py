"""Rating baselines: what to predict for a user or an item the model never saw.

A factor model has no vector for an id it did not train on. Rating libraries
(Surprise's baseline estimates, LensKit's bias scorer) answer such pairs with the
global mean plus the known side's offset instead of failing the whole request;
recsys does the same when asked (``Recommender.predict(..., unknown="baseline")``).
Offsets are damped means of the training ratings' deviations from the global
mean, so a user or item with few ratings stays near the mean:
``offset = sum(r - mean) / (count + DAMPING)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

DAMPING = 10.0


@dataclass(frozen=True)
class RatingBaseline:
    """The global mean rating and each user's and item's damped offset from it."""

    mean: float
    user_offsets: np.ndarray
    item_offsets: np.ndarray

    @classmethod
    def from_ratings(
        cls, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int
    ) -> RatingBaseline:
        mean = float(ratings.mean()) if len(ratings) else 0.0
        deviations = ratings.astype(np.float64) - mean

        def offsets(index: np.ndarray, n: int) -> np.ndarray:
            sums = np.bincount(index, weights=deviations, minlength=n)
            counts = np.bincount(index, minlength=n)
            return (sums / (counts + DAMPING)).astype(np.float32)

        return cls(mean, offsets(users, n_users), offsets(items, n_items))

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Mean plus the offsets of the known sides (index -1: unknown, no offset)."""
        user_part = np.where(users >= 0, self.user_offsets[np.maximum(users, 0)], 0.0)
        item_part = np.where(items >= 0, self.item_offsets[np.maximum(items, 0)], 0.0)
        return (self.mean + user_part + item_part).astype(np.float32)

    def state(self) -> dict[str, object]:
        return {
            "mean": self.mean,
            "user_offsets": torch.from_numpy(self.user_offsets),
            "item_offsets": torch.from_numpy(self.item_offsets),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> RatingBaseline:
        return cls(
            float(state["mean"]),  # type: ignore[arg-type]  # a saved state: a float and two tensors
            state["user_offsets"].numpy(),  # type: ignore[attr-defined]  # a saved state: a tensor
            state["item_offsets"].numpy(),  # type: ignore[attr-defined]  # a saved state: a tensor
        )
