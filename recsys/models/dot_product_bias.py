"""Matrix factorisation with biases: rating = squash(user . item + user bias + item bias)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recsys.models.layers import embedding_table, sigmoid_range
from recsys.models.scorer import CollabScorer


@dataclass(frozen=True)
class DotProductBiasConfig:
    n_users: int
    n_items: int
    n_factors: int = 50
    # None: raw scores, for ranking objectives where only the order matters.
    y_range: tuple[float, float] | None = (0.0, 5.5)
    # Sparse gradients touch only the rows in a batch: the fast path for big tables.
    sparse: bool = False


class DotProductBias(CollabScorer):
    """User and item factor tables plus per-user and per-item biases."""

    def __init__(self, config: DotProductBiasConfig) -> None:
        super().__init__()
        self.config = config
        self.n_users, self.n_items = config.n_users, config.n_items
        self.rating_range = config.y_range
        self.user_factors = embedding_table(config.n_users, config.n_factors)
        self.item_factors = embedding_table(config.n_items, config.n_factors)
        self.user_bias = embedding_table(config.n_users, 1)
        self.item_bias = embedding_table(config.n_items, 1)

    def _rows(self, table: nn.Parameter, index: torch.Tensor) -> torch.Tensor:
        return F.embedding(index, table, sparse=self.config.sparse)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self._rows(self.user_factors, users) * self._rows(self.item_factors, items)).sum(1)
        biases = self._rows(self.user_bias, users)[:, 0] + self._rows(self.item_bias, items)[:, 0]
        return self._squash(dot + biases)

    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """One matrix product; what sampled-softmax training calls."""
        logits = self._rows(self.user_factors, users) @ self._rows(self.item_factors, items).T
        logits = logits + self._rows(self.user_bias, users) + self._rows(self.item_bias, items).T
        return self._squash(logits)

    @torch.no_grad()
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        """Reads the item tables in place (no gather), in as few calls as it can: on
        the request path each torch call costs more than the arithmetic."""
        logits = torch.addmm(
            self.item_bias.T, self.user_factors.index_select(0, users), self.item_factors.T
        )
        logits += self.user_bias.index_select(0, users)
        return self._squash(logits)

    def _squash(self, logits: torch.Tensor) -> torch.Tensor:
        if self.config.y_range is None:
            return logits
        return sigmoid_range(logits, *self.config.y_range)

    def sparse_parameters(self) -> list[torch.Tensor]:
        """The tables that get sparse gradients (all four, when ``config.sparse``)."""
        if not self.config.sparse:
            return []
        return [self.user_factors, self.item_factors, self.user_bias, self.item_bias]

    def item_embeddings(self) -> torch.Tensor:
        return self.item_factors.detach()

    @torch.no_grad()
    def item_search_vectors(self) -> torch.Tensor:
        """[factors, bias]: the user bias is the same for every item, and the squash of a
        rating model keeps the order."""
        return torch.cat([self.item_factors, self.item_bias], dim=1)

    @torch.no_grad()
    def user_search_vectors(self, users: torch.Tensor) -> torch.Tensor:
        factors = self.user_factors.index_select(0, users)
        return torch.cat([factors, torch.ones(len(users), 1, device=factors.device)], dim=1)

    def user_embeddings(self) -> torch.Tensor:
        return self.user_factors.detach()

    def new_user_vector(self) -> torch.Tensor:
        """Factors and a bias: zeros, the user who has rated nothing."""
        return torch.zeros(self.config.n_factors + 1, device=self.item_factors.device)

    def score_user_vector(self, vector: torch.Tensor) -> torch.Tensor:
        logits = self.item_factors.detach() @ vector[:-1] + self.item_bias.detach()[:, 0]
        return self._squash(logits + vector[-1])

    def biases(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_bias.detach()[:, 0], self.item_bias.detach()[:, 0]
