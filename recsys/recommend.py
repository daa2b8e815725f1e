"""Recommender: a trained collaborative model with its id maps, answering in external ids.

The one contract every caller (notebook, CLI, API) uses. Scoring is batch-first:
one matrix product for all items of a batch of users, then a partial sort.
Items a user rated in training are left out on request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from recsys.data.metadata import MetadataEncoder
from recsys.data.ratings import IdMap, UnknownIdError
from recsys.models.hybrid import HybridNN


@dataclass(frozen=True)
class SeenItems:
    """Each user's training items, compressed by row (CSR): items of user u are
    ``indices[indptr[u]:indptr[u + 1]]``."""

    indptr: np.ndarray
    indices: np.ndarray

    @classmethod
    def from_pairs(cls, users: np.ndarray, items: np.ndarray, n_users: int) -> SeenItems:
        order = np.lexsort((items, users))
        counts = np.bincount(users, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(indptr, items[order].astype(np.int64))

    def of(self, user: int) -> np.ndarray:
        return self.indices[self.indptr[user] : self.indptr[user + 1]]


class Recommender:
    """Predict ratings, recommend items and find similar items, in external ids.

    Args:
        model: a collaborative model with ``score_all_items`` and ``item_embeddings``.
        user_map, item_map: external id <-> model index.
        seen: the items each user rated in training, for ``exclude_seen``.
    """

    def __init__(self, model: nn.Module, user_map: IdMap, item_map: IdMap, seen: SeenItems) -> None:
        self.model = model.eval()
        self.user_map = user_map
        self.item_map = item_map
        self.seen = seen
        self.device = next(iter([*model.parameters(), *model.buffers()])).device
        embeddings = model.item_embeddings().float()
        self._unit_items = embeddings / embeddings.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def unit_item_embeddings(self) -> torch.Tensor:
        """Item embeddings scaled to length 1: dot products are cosine similarities."""
        return self._unit_items

    @torch.no_grad()
    def predict(
        self, pairs: pd.DataFrame, user_col: str = "user_id", item_col: str = "item_id"
    ) -> np.ndarray:
        """Predicted ratings for rows of (user, item); UnknownIdError names an unseen id."""
        users = self.user_map.indices(pairs[user_col])
        items = self.item_map.indices(pairs[item_col])
        x = torch.from_numpy(np.stack([users, items], axis=1)).to(self.device)
        return self.model(x).float().cpu().numpy()

    @torch.no_grad()
    def recommend_many(
        self, user_ids: Sequence[object], n: int = 10, exclude_seen: bool = True
    ) -> list[pd.DataFrame]:
        """Top-``n`` items with scores for each user, best first."""
        users = self.user_map.indices(user_ids)
        scores = self.model.score_all_items(torch.from_numpy(users).to(self.device)).float()
        if exclude_seen:
            for row, user in enumerate(users):
                scores[row, torch.from_numpy(self.seen.of(int(user))).to(self.device)] = -torch.inf
        k = min(n, scores.shape[1])
        top_scores, top_items = torch.topk(scores, k, dim=1)
        results = []
        for row_scores, row_items in zip(
            top_scores.cpu().numpy(), top_items.cpu().numpy(), strict=True
        ):
            keep = np.isfinite(row_scores)  # fewer than n unseen items left
            results.append(
                pd.DataFrame(
                    {"item_id": self.item_map.ids[row_items[keep]], "score": row_scores[keep]}
                )
            )
        return results

    def recommend(self, user_id: object, n: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``n`` items for one user: columns ``item_id`` and ``score`` (predicted rating)."""
        return self.recommend_many([user_id], n, exclude_seen)[0]

    @torch.no_grad()
    def similar_items(self, item_id: object, n: int = 10) -> pd.DataFrame:
        """The ``n`` items whose embeddings are closest in cosine similarity (itself excluded)."""
        item = self.item_map.index(item_id)
        similarity = self._unit_items @ self._unit_items[item]
        similarity[item] = -torch.inf
        k = min(n, len(similarity) - 1)
        scores, items = torch.topk(similarity, k)
        return pd.DataFrame(
            {"item_id": self.item_map.ids[items.cpu().numpy()], "score": scores.cpu().numpy()}
        )


def aligned(frame: pd.DataFrame, id_col: str, ids: np.ndarray) -> pd.DataFrame:
    """The rows of ``frame`` for ``ids`` in order; ids without a row get missing metadata."""
    return frame.drop_duplicates(id_col).set_index(id_col).reindex(pd.Index(ids, dtype=object))


class HybridRecommender(Recommender):
    """A :class:`Recommender` that also scores users and items from their metadata alone."""

    def __init__(
        self,
        model: HybridNN,
        user_map: IdMap,
        item_map: IdMap,
        seen: SeenItems,
        encoder: MetadataEncoder,
    ) -> None:
        super().__init__(model, user_map, item_map, seen)
        self.encoder = encoder

    @torch.no_grad()
    def predict_with_metadata(
        self,
        pairs: pd.DataFrame,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        user_col: str = "user_id",
        item_col: str = "item_id",
    ) -> np.ndarray:
        """Predicted ratings; an id unseen in training is scored from its row in ``users`` /
        ``items`` (same id columns). UnknownIdError names an id unknown to both."""
        model: HybridNN = self.model  # type: ignore[assignment]
        user_ids, user_meta = self._side(pairs[user_col], self.user_map, users, user_col)
        item_ids, item_rows = self._side(pairs[item_col], self.item_map, items, item_col)
        known_items = item_ids < model.config.n_items
        genres = model.item_genres[torch.from_numpy(np.where(known_items, item_ids, -1))].cpu()
        decades = model.item_decades[torch.from_numpy(np.where(known_items, item_ids, -1))].cpu()
        if items is not None and (~known_items).any():
            new_genres, new_decades = self.encoder.encode_items(item_rows[~known_items])
            genres[~known_items] = torch.from_numpy(new_genres)
            decades[~known_items] = torch.from_numpy(new_decades)
        known_users = user_ids < model.config.n_users
        metadata = model.user_metadata[torch.from_numpy(np.where(known_users, user_ids, -1))].cpu()
        if users is not None and (~known_users).any():
            metadata[~known_users] = torch.from_numpy(
                self.encoder.encode_users(user_meta[~known_users])
            )
        device = self.device
        scores = model.score_pairs(
            torch.from_numpy(user_ids).to(device),
            metadata.to(device),
            torch.from_numpy(item_ids).to(device),
            genres.to(device),
            decades.to(device),
        )
        return scores.float().cpu().numpy()

    @staticmethod
    def _side(
        ids: pd.Series, id_map: IdMap, metadata: pd.DataFrame | None, id_col: str
    ) -> tuple[np.ndarray, pd.DataFrame]:
        """Model indices (``len(id_map)`` = unknown) and each row's metadata."""
        known = ids.isin(id_map.ids)
        offered = set() if metadata is None else set(metadata[id_col])
        unexplained = ids[~known & ~ids.isin(offered)]
        if len(unexplained):
            raise UnknownIdError(id_map.kind, unexplained.iloc[0])
        indices = np.array(
            [id_map.index(i) if k else len(id_map) for i, k in zip(ids, known, strict=True)],
            dtype=np.int64,
        )
        rows = (
            aligned(metadata, id_col, ids.to_numpy(dtype=object))
            if metadata is not None
            else pd.DataFrame(index=range(len(ids)))
        )
        return indices, rows.reset_index(drop=True)

    @torch.no_grad()
    def recommend_new_user(
        self, profile: Mapping[str, object], n: int = 10, exclude: Sequence[object] = ()
    ) -> pd.DataFrame:
        """Top-``n`` items (``item_id``, ``score``) for someone with metadata and no ratings:
        ``profile`` like ``{"age": 31, "gender": "F", "occupation": "engineer"}``."""
        scores = self.score_new_user(profile)
        drop = sorted({self.item_map.index(i) for i in exclude if i in self.item_map})
        if drop:
            scores[torch.tensor(drop)] = -torch.inf
        top_scores, top_items = torch.topk(scores, min(n, len(scores) - len(drop)))
        return pd.DataFrame(
            {"item_id": self.item_map.ids[top_items.numpy()], "score": top_scores.numpy()}
        )

    @torch.no_grad()
    def score_new_user(self, profile: Mapping[str, object]) -> torch.Tensor:
        """Predicted ratings of every model item for a user known only by ``profile``."""
        metadata = torch.from_numpy(self.encoder.encode_user(profile)).to(self.device)
        return self.model.score_new_user(metadata).float().cpu()  # type: ignore[operator]
