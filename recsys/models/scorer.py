"""The contract every collaborative model implements: :class:`CollabScorer`.

Everything above the models — the learners, the one ``Recommender``, evaluation,
the training job and the service — scores through these methods and nothing
else, so none of them needs to know which model it holds. A model that cannot do
something (EASE has no rating scale and no user vectors; only the hybrid model
reads metadata) raises a :class:`CapabilityError` that says so, instead of
answering with something else.

Indices here are model indices (0..n-1); mapping external ids to them is the
``Recommender``'s job.

Example::

    model = DotProductBias(DotProductBiasConfig(n_users=3, n_items=4))
    model.score_all_items(torch.tensor([0, 2]))  # (2, 4) predicted ratings
    model.score_pairs(torch.tensor([0]), torch.tensor([3]))  # (1,)
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from torch import nn


class CapabilityError(ValueError):
    """The model cannot do what was asked (and says which model would)."""


class NoBiasesError(CapabilityError):
    """The model has no bias terms (the deep models fold them into their layers)."""


class NoRatingScaleError(CapabilityError):
    """The model ranks items; its scores are not ratings."""


class NoMetadataError(CapabilityError):
    """The model scores ids only; it cannot answer from user or item metadata."""


class CollabScorer(nn.Module, metaclass=ABCMeta):
    """A collaborative model: users x items -> scores.

    Attributes:
        n_users, n_items: the sizes of the index spaces it scores.
        rating_range: ``(low, high)`` when scores are predicted ratings in that
            range; ``None`` for ranking models, whose scores only order items.

    ``forward(x)`` reads the collaborative batch (``x[:, 0]`` users, ``x[:, 1]``
    items) and returns ``score_pairs`` of it, so every model trains on the same
    batches.
    """

    n_users: int
    n_items: int
    rating_range: tuple[float, float] | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_pairs(x[:, 0], x[:, 1])

    @abstractmethod
    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of (``users[i]``, ``items[i]``) pairs: (N,) for (N,) and (N,)."""

    @abstractmethod
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: (len(users), n_items). The serving hot path."""

    @abstractmethod
    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of the same candidate ``items`` (M,) for each of ``users`` (B,): (B, M)."""

    @abstractmethod
    def item_embeddings(self) -> torch.Tensor:
        """One vector per item (n_items, d): cosine similarity of these is item similarity."""

    def user_embeddings(self) -> torch.Tensor:
        """One vector per user (n_users, d), for user-to-user similarity."""
        raise CapabilityError(f"{type(self).__name__} has no user vectors")

    def biases(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Learned (user biases (n_users,), item biases (n_items,))."""
        raise NoBiasesError(
            f"{type(self).__name__} has no biases; train a DotProductBias (--model dot) to see them"
        )

    def score_new_users(self, user_metadata: torch.Tensor) -> torch.Tensor:
        """Scores of every item for users known only by encoded metadata (B, fields)."""
        raise NoMetadataError(
            f"{type(self).__name__} scores known ids only; train --model hybrid for metadata"
        )

    def score_with_metadata(
        self,
        user_ids: torch.Tensor,
        user_metadata: torch.Tensor,
        item_ids: torch.Tensor,
        item_genres: torch.Tensor,
        item_decades: torch.Tensor,
    ) -> torch.Tensor:
        """Scores of pairs of which some ids are unknown (id ``n_users`` / ``n_items``) and
        scored from the metadata rows given for them (encoded by the MetadataEncoder)."""
        raise NoMetadataError(
            f"{type(self).__name__} scores known ids only; train --model hybrid for metadata"
        )

    def sparse_parameters(self) -> list[nn.Parameter]:
        """The tables trained with sparse gradients (none unless the model says so)."""
        return []
