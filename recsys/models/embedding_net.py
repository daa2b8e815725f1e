"""A deep collaborative model: [user embedding, item embedding] -> MLP -> rating."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from recsys.models.layers import embedding_size, sigmoid_range
from recsys.models.scorer import CollabScorer


@dataclass(frozen=True)
class EmbeddingNNConfig:
    n_users: int
    n_items: int
    user_size: int | None = None  # None: the rule of thumb
    item_size: int | None = None
    layers: tuple[int, ...] = field(default=(100,))
    dropout: float = 0.0
    embedding_dropout: float = 0.0
    # None: raw scores, for ranking objectives.
    y_range: tuple[float, float] | None = (0.0, 5.5)
    sparse: bool = False


class EmbeddingNN(CollabScorer):
    """Concatenated user and item embeddings through Linear -> ReLU -> Dropout blocks."""

    def __init__(self, config: EmbeddingNNConfig) -> None:
        super().__init__()
        self.config = config
        self.n_users, self.n_items = config.n_users, config.n_items
        self.rating_range = config.y_range
        user_size = config.user_size or embedding_size(config.n_users)
        item_size = config.item_size or embedding_size(config.n_items)
        self.user_embedding = nn.Embedding(config.n_users, user_size, sparse=config.sparse)
        self.item_embedding = nn.Embedding(config.n_items, item_size, sparse=config.sparse)
        for table in (self.user_embedding, self.item_embedding):
            nn.init.normal_(table.weight, std=0.01)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        blocks: list[nn.Module] = []
        width = user_size + item_size
        for size in config.layers:
            blocks += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
        blocks.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*blocks)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        embedded = torch.cat([self.user_embedding(users), self.item_embedding(items)], dim=1)
        logits = self.mlp(self.embedding_dropout(embedded))[:, 0]
        if self.config.y_range is None:
            return logits
        return sigmoid_range(logits, *self.config.y_range)

    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Every (user, candidate) pair through the MLP: B x M forward passes."""
        pairs = self.score_pairs(users.repeat_interleave(len(items)), items.repeat(len(users)))
        return pairs.view(len(users), len(items))

    @torch.no_grad()
    def score_all_items(self, users: torch.Tensor, chunk_items: int = 4096) -> torch.Tensor:
        """In item chunks, one user at a time, to bound the MLP's batch."""
        all_items = torch.arange(self.config.n_items, device=users.device)
        return torch.stack(
            [
                torch.cat(
                    [
                        self.score_candidates(user[None], all_items[i : i + chunk_items])[0]
                        for i in range(0, len(all_items), chunk_items)
                    ]
                )
                for user in users
            ]
        )

    def sparse_parameters(self) -> list[torch.Tensor]:
        """The embedding tables, when ``config.sparse``; the MLP stays dense."""
        if not self.config.sparse:
            return []
        return [self.user_embedding.weight, self.item_embedding.weight]

    def item_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight.detach()

    def user_embeddings(self) -> torch.Tensor:
        return self.user_embedding.weight.detach()

    def new_user_vector(self) -> torch.Tensor:
        """The mean user: a new user starts as the average of the known ones."""
        return self.user_embedding.weight.detach().mean(dim=0)

    def score_user_vector(self, vector: torch.Tensor) -> torch.Tensor:
        items = self.item_embedding.weight.detach()
        embedded = torch.cat([vector.expand(len(items), -1), items], dim=1)
        logits = self.mlp(embedded)[:, 0]
        return (
            logits if self.config.y_range is None else sigmoid_range(logits, *self.config.y_range)
        )
