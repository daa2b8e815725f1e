"""A deep model that ranks: user and item towers that meet in a dot product.

The concatenating deep model (``EmbeddingNN``) must push every (user, candidate)
pair through its MLP, so scoring a catalog is n_items forward passes per user
and its sampled-softmax training sees few negatives. Here each side has its own
tower — an embedding, then a residual MLP — and a score is the dot product of
the two outputs plus an item bias: scoring every item is one matrix product of
the user's output with the item outputs, computed once per set of weights.

The last layer of each tower starts at zero, so training starts from a plain
dot model and the MLP learns what it can add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recsys.models.layers import embedding_table
from recsys.models.scorer import CollabScorer


@dataclass(frozen=True)
class TwoTowerConfig:
    n_users: int
    n_items: int
    n_factors: int = 64  # the embedding and output width of both towers
    layers: tuple[int, ...] = field(default=(128,))  # each tower's hidden widths
    sparse: bool = False


class Tower(nn.Module):
    """x + MLP(x): Linear -> ReLU blocks, then a zero-initialised Linear back to x's width."""

    def __init__(self, width: int, layers: tuple[int, ...]) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        size = width
        for hidden in layers:
            blocks += [nn.Linear(size, hidden), nn.ReLU()]
            size = hidden
        last = nn.Linear(size, width)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*blocks, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(x)


class TwoTower(CollabScorer):
    """score(u, i) = user_tower(u) . item_tower(i) + item bias. A ranking model: its
    scores order items and are not ratings."""

    def __init__(self, config: TwoTowerConfig) -> None:
        super().__init__()
        self.config = config
        self.n_users, self.n_items = config.n_users, config.n_items
        self.rating_range = None
        self.user_factors = embedding_table(config.n_users, config.n_factors)
        self.item_factors = embedding_table(config.n_items, config.n_factors)
        self.item_bias = embedding_table(config.n_items, 1)
        self.user_tower = Tower(config.n_factors, config.layers)
        self.item_tower = Tower(config.n_factors, config.layers)
        self._item_cache: torch.Tensor | None = None

    def _rows(self, table: nn.Parameter, index: torch.Tensor) -> torch.Tensor:
        return F.embedding(index, table, sparse=self.config.sparse)

    def _users(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_tower(self._rows(self.user_factors, users))

    def _items(self, items: torch.Tensor) -> torch.Tensor:
        return self.item_tower(self._rows(self.item_factors, items))

    def _all_items(self) -> torch.Tensor:
        """Every item's tower output; in eval mode computed once and kept (serving), until
        the mode changes or weights are loaded."""
        if self.training or torch.is_grad_enabled():
            return self.item_tower(self.item_factors)
        if self._item_cache is None:
            self._item_cache = self.item_tower(self.item_factors)
        return self._item_cache

    def train(self, mode: bool = True) -> TwoTower:
        self._item_cache = None
        return super().train(mode)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._item_cache = None
        super()._load_from_state_dict(*args, **kwargs)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self._users(users) * self._items(items)).sum(1)
        return dot + self._rows(self.item_bias, items)[:, 0]

    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """One matrix product of the towers' outputs; what sampled-softmax training calls."""
        return self._users(users) @ self._items(items).T + self._rows(self.item_bias, items).T

    @torch.no_grad()
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.item_bias.T, self._users(users), self._all_items().T)

    def sparse_parameters(self) -> list[torch.Tensor]:
        """The embedding tables and item biases, when ``config.sparse``; towers stay dense."""
        if not self.config.sparse:
            return []
        return [self.user_factors, self.item_factors, self.item_bias]

    @torch.no_grad()
    def item_search_vectors(self) -> torch.Tensor:
        return torch.cat([self._all_items(), self.item_bias], dim=1)

    @torch.no_grad()
    def user_search_vectors(self, users: torch.Tensor) -> torch.Tensor:
        towers = self._users(users)
        return torch.cat([towers, torch.ones(len(users), 1, device=towers.device)], dim=1)

    @torch.no_grad()
    def item_embeddings(self) -> torch.Tensor:
        return self._all_items().clone()

    @torch.no_grad()
    def user_embeddings(self) -> torch.Tensor:
        return self.user_tower(self.user_factors)

    def new_user_vector(self) -> torch.Tensor:
        """Zeros before the user tower: the user who has said nothing yet."""
        return torch.zeros(self.config.n_factors, device=self.item_factors.device)

    def score_user_vector(self, vector: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            items = self._all_items()
        return items @ self.user_tower(vector) + self.item_bias.detach()[:, 0]
