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

# Fold-in: Adam steps on one user vector, its learning rate and ridge penalty.
FOLD_IN_STEPS, FOLD_IN_LR, FOLD_IN_L2 = 60, 0.1, 1e-3


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

    def item_search_vectors(self) -> torch.Tensor:
        """Per item, a vector (n_items, d) whose inner product with
        :meth:`user_search_vectors` orders items as ``score_all_items`` does: what an
        approximate nearest-neighbour index searches."""
        raise CapabilityError(f"{type(self).__name__}'s scores are not inner products")

    def user_search_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """Per user, the query vector (len(users), d) for :meth:`item_search_vectors`."""
        raise CapabilityError(f"{type(self).__name__}'s scores are not inner products")

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

    def sparse_parameters(self) -> list[torch.Tensor]:
        """The tables trained with sparse gradients (none unless the model says so)."""
        return []

    # -- users the model never saw: fold-in -----------------------------------------------
    def new_user_vector(self) -> torch.Tensor:
        """The starting point of a fold-in: a user who has said nothing yet (d,)."""
        raise CapabilityError(f"{type(self).__name__} cannot fold in new users")

    def score_user_vector(self, vector: torch.Tensor) -> torch.Tensor:
        """Scores of every item (n_items,) for a user given as a vector; differentiable."""
        raise CapabilityError(f"{type(self).__name__} cannot fold in new users")

    def fold_in(
        self,
        items: torch.Tensor,
        ratings: torch.Tensor,
        liked: torch.Tensor,
        steps: int = FOLD_IN_STEPS,
    ) -> torch.Tensor:
        """Scores of every item (n_items,) for a user the model never saw, from their
        ``ratings`` of ``items`` (``liked``: which of them they liked), with the trained
        model held fixed.

        The user's vector is fitted to those ratings by ``steps`` Adam steps on the
        model's own objective — squared error for a rating model, a weighted softmax
        over all items (liked items count fully, others a quarter) for a ranking model
        — with a small ridge penalty; implicit's ``recalculate_user`` does the same for
        ALS in closed form. Deterministic: it starts from ``new_user_vector()``.
        """
        vector = self.new_user_vector().detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([vector], lr=FOLD_IN_LR)
        weights = torch.where(liked, 1.0, 0.25)
        with torch.enable_grad():
            for _ in range(steps):
                optimizer.zero_grad()
                scores = self.score_user_vector(vector)
                if self.rating_range is not None:
                    loss = ((scores[items] - ratings) ** 2).mean()
                else:
                    log_p = torch.log_softmax(scores, dim=0)[items]
                    loss = -(log_p * weights).sum() / weights.sum()
                (loss + FOLD_IN_L2 * vector.pow(2).sum()).backward()
                optimizer.step()
        with torch.no_grad():
            return self.score_user_vector(vector)
