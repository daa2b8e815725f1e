"""A deep collaborative model that also reads user and item metadata, for cold starts.

User side: id embedding + age-group, gender and occupation embeddings. Item side:
id embedding + the mean of its genre embeddings + a release-decade embedding.
Both sides are concatenated into an MLP that predicts the rating.

The id tables have one extra row, the "unknown" id (the last row). During
training each id is replaced by it with probability ``id_dropout``, so the model
learns to predict from metadata alone; a user or item unseen in training is
scored with that row and its own metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from recsys.models.layers import embedding_size, sigmoid_range
from recsys.models.scorer import CollabScorer


@dataclass(frozen=True)
class HybridNNConfig:
    n_users: int
    n_items: int
    user_cardinalities: tuple[int, ...]  # per user field, index 0 = unknown
    n_genres: int  # multi-hot columns, "no known genre" included
    n_decades: int  # index 0 = unknown
    layers: tuple[int, ...] = field(default=(100,))
    dropout: float = 0.0
    id_dropout: float = 0.1
    n_factors: int = 0  # > 0: add a dot product of summed factors, plus summed biases
    y_range: tuple[float, float] | None = (0.0, 5.5)


class HybridNN(CollabScorer):
    """Metadata per user and item index lives in buffers saved with the weights."""

    user_metadata: torch.Tensor  # buffers: each known user's and item's metadata
    item_genres: torch.Tensor
    item_decades: torch.Tensor

    def __init__(self, config: HybridNNConfig) -> None:
        super().__init__()
        self.config = config
        self.n_users, self.n_items = config.n_users, config.n_items
        self.rating_range = config.y_range
        self.user_id = nn.Embedding(config.n_users + 1, embedding_size(config.n_users))
        self.item_id = nn.Embedding(config.n_items + 1, embedding_size(config.n_items))
        self.user_fields = nn.ModuleList(
            nn.Embedding(n, embedding_size(n)) for n in config.user_cardinalities
        )
        self.genre = nn.Parameter(torch.randn(config.n_genres, embedding_size(config.n_genres)))
        self.decade = nn.Embedding(config.n_decades, embedding_size(config.n_decades))
        for table in (self.user_id, self.item_id, *self.user_fields, self.decade):
            nn.init.normal_(table.weight, std=0.01)
        nn.init.normal_(self.genre, std=0.01)
        self.wide = WideFactors(config) if config.n_factors else None
        # Row n_users / n_items: the unknown id, with unknown metadata.
        n_fields = len(config.user_cardinalities)
        self.register_buffer("user_metadata", torch.zeros(config.n_users + 1, n_fields).long())
        self.register_buffer("item_genres", torch.zeros(config.n_items + 1, config.n_genres))
        self.register_buffer("item_decades", torch.zeros(config.n_items + 1).long())
        width = self.user_width + self.item_width - 2 * self.wide_width
        blocks: list[nn.Module] = []
        for size in config.layers:
            blocks += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
        blocks.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*blocks)

    @property
    def wide_width(self) -> int:
        return self.config.n_factors + 1 if self.wide is not None else 0

    @property
    def user_width(self) -> int:
        deep = self.user_id.embedding_dim + sum(map(embedding_size, self.config.user_cardinalities))
        return deep + self.wide_width

    @property
    def item_width(self) -> int:
        deep = self.item_id.embedding_dim + self.genre.shape[1] + self.decade.embedding_dim
        return deep + self.wide_width

    @torch.no_grad()
    def set_metadata(
        self, users: torch.Tensor, item_genres: torch.Tensor, item_decades: torch.Tensor
    ) -> None:
        """Metadata of the training users (n_users, fields) and items, by model index."""
        self.user_metadata[:-1] = users.to(self.user_metadata)
        self.item_genres[:-1] = item_genres.to(self.item_genres)
        self.item_decades[:-1] = item_decades.to(self.item_decades)

    def _drop_ids(self, ids: torch.Tensor, unknown: int) -> torch.Tensor:
        if not self.training or self.config.id_dropout == 0:
            return ids
        dropped = torch.rand(ids.shape, device=ids.device) < self.config.id_dropout
        return torch.where(dropped, torch.full_like(ids, unknown), ids)

    def user_vectors(self, ids: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        """User side for id rows ``ids`` (n_users = unknown) and metadata rows (n, fields):
        the deep inputs concatenated, then the summed wide factors."""
        fields = [e(metadata[:, i]) for i, e in enumerate(self.user_fields)]
        wide = [self.wide.users(ids, metadata)] if self.wide is not None else []
        return torch.cat([self.user_id(ids), *fields, *wide], dim=1)

    def item_vectors(
        self, ids: torch.Tensor, genres: torch.Tensor, decades: torch.Tensor
    ) -> torch.Tensor:
        """Item side: id row, mean genre embedding (zero with no genre), decade."""
        genre_mean = genres / genres.sum(dim=1, keepdim=True).clamp_min(1.0)
        deep = [self.item_id(ids), genre_mean @ self.genre, self.decade(decades)]
        wide = [self.wide.items(ids, genre_mean, decades)] if self.wide is not None else []
        return torch.cat([*deep, *wide], dim=1)

    def _head(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        w = self.wide_width
        deep_users, wide_users = users[:, : users.shape[1] - w], users[:, users.shape[1] - w :]
        deep_items, wide_items = items[:, : items.shape[1] - w], items[:, items.shape[1] - w :]
        out = self.mlp(torch.cat([deep_users, deep_items], dim=1))[:, 0]
        if w:
            factors = (wide_users[:, :-1] * wide_items[:, :-1]).sum(dim=1)
            out = out + factors + wide_users[:, -1] + wide_items[:, -1]
        return out if self.config.y_range is None else sigmoid_range(out, *self.config.y_range)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """In training, ids are replaced by the unknown id with probability ``id_dropout``."""
        user_side = self.user_vectors(
            self._drop_ids(users, self.config.n_users), self.user_metadata[users]
        )
        item_side = self._item_rows(self._drop_ids(items, self.config.n_items), items)
        return self._head(user_side, item_side)

    def _item_rows(self, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.item_vectors(ids, self.item_genres[rows], self.item_decades[rows])

    def score_user_vectors(self, user_side: torch.Tensor, chunk_items: int = 4096) -> torch.Tensor:
        """Scores of every item for each user-side row (B, user_width): (B, n_items)."""
        items = torch.arange(self.config.n_items, device=user_side.device)
        rows = []
        for user in user_side:
            scores = [
                self._head(user.expand(len(part), -1), self._item_rows(part, part))
                for part in items.split(chunk_items)
            ]
            rows.append(torch.cat(scores))
        return torch.stack(rows)

    @torch.no_grad()
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        return self.score_user_vectors(self.user_vectors(users, self.user_metadata[users]))

    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        user_side = self.user_vectors(users, self.user_metadata[users])
        item_side = self._item_rows(items, items)
        pairs = self._head(
            user_side.repeat_interleave(len(items), dim=0), item_side.repeat(len(users), 1)
        )
        return pairs.view(len(users), len(items))

    @torch.no_grad()
    def score_new_users(self, user_metadata: torch.Tensor) -> torch.Tensor:
        """Users unseen in training: the unknown id row with their own metadata."""
        unknown = torch.full(
            (len(user_metadata),), self.config.n_users, device=user_metadata.device
        )
        return self.score_user_vectors(self.user_vectors(unknown, user_metadata))

    @torch.no_grad()
    def score_with_metadata(
        self,
        user_ids: torch.Tensor,
        user_metadata: torch.Tensor,
        item_ids: torch.Tensor,
        item_genres: torch.Tensor,
        item_decades: torch.Tensor,
    ) -> torch.Tensor:
        """Known ids (below n_users / n_items) read their stored metadata; the given
        metadata rows are used for the unknown ones."""
        known_users = (user_ids < self.config.n_users)[:, None]
        user_metadata = torch.where(known_users, self.user_metadata[user_ids], user_metadata)
        known_items = item_ids < self.config.n_items
        item_genres = torch.where(known_items[:, None], self.item_genres[item_ids], item_genres)
        item_decades = torch.where(known_items, self.item_decades[item_ids], item_decades)
        return self._head(
            self.user_vectors(user_ids, user_metadata),
            self.item_vectors(item_ids, item_genres, item_decades),
        )

    def item_embeddings(self) -> torch.Tensor:
        """Each training item's side (id, genres, decade)."""
        items = torch.arange(self.config.n_items, device=self.item_genres.device)
        return self._item_rows(items, items).detach()

    def new_user_vector(self) -> torch.Tensor:
        """The unknown user (the id row learned by id dropout) with unknown metadata."""
        unknown = torch.tensor([self.config.n_users], device=self.user_metadata.device)
        return self.user_vectors(unknown, self.user_metadata[unknown])[0].detach()

    def score_user_vector(self, vector: torch.Tensor) -> torch.Tensor:
        items = torch.arange(self.config.n_items, device=vector.device)
        return self._head(vector.expand(len(items), -1), self._item_rows(items, items))

    def user_embeddings(self) -> torch.Tensor:
        """Each training user's side (id and metadata)."""
        users = torch.arange(self.config.n_users, device=self.user_metadata.device)
        return self.user_vectors(users, self.user_metadata[users]).detach()


class WideFactors(nn.Module):
    """The optional dot-product part: per input a factor row with a bias in its last
    column; a side's factors are the sum over its inputs (id + each metadata field)."""

    def __init__(self, config: HybridNNConfig) -> None:
        super().__init__()
        width = config.n_factors + 1
        self.user_id = nn.Embedding(config.n_users + 1, width)
        self.user_fields = nn.ModuleList(nn.Embedding(n, width) for n in config.user_cardinalities)
        self.item_id = nn.Embedding(config.n_items + 1, width)
        self.genre = nn.Parameter(torch.randn(config.n_genres, width) * 0.01)
        self.decade = nn.Embedding(config.n_decades, width)
        for table in (self.user_id, *self.user_fields, self.item_id, self.decade):
            nn.init.normal_(table.weight, std=0.01)

    def users(self, ids: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        factors = self.user_id(ids)
        for i, table in enumerate(self.user_fields):
            factors = factors + table(metadata[:, i])
        return factors

    def items(
        self, ids: torch.Tensor, genre_mean: torch.Tensor, decades: torch.Tensor
    ) -> torch.Tensor:
        return self.item_id(ids) + genre_mean @ self.genre + self.decade(decades)
