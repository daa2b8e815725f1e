"""EASE (Steck, 2019): a closed-form item-item model for top-N recommendation.

B = argmin ||X - XB||² + λ||B||² subject to diag(B) = 0, where X is the binary
user x item interaction matrix. The solution is one d x d inverse:
P = (XᵀX + λI)⁻¹, B = -P / diag(P), diag(B) = 0. A user's scores are their row
of X times B. Strong and cheap up to tens of thousands of items; beyond that the
d x d matrices no longer fit, and :func:`fit_ease` refuses instead of trying.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

from recsys.models.scorer import CollabScorer

# The solve holds two d x d float32 matrices (the Gram matrix and its inverse):
# 7.2 GB at 30,000 items.
MAX_ITEMS = 30_000


class CatalogTooLargeError(ValueError):
    """EASE was asked to fit more items than its d x d solve can hold in memory."""


@dataclass(frozen=True)
class EASEConfig:
    n_users: int
    n_items: int
    n_interactions: int
    l2: float = 250.0


class EASE(CollabScorer):
    """Item-item weights B and each user's interactions (CSR); scores = X[users] @ B.

    There are no trained parameters: ``fit_ease`` fills the buffers. Scores rank
    items; they are not ratings (``rating_range`` is None), and users have no
    vectors of their own.
    """

    def __init__(self, config: EASEConfig) -> None:
        super().__init__()
        self.config = config
        self.n_users, self.n_items = config.n_users, config.n_items
        self.rating_range = None
        self.register_buffer("item_weights", torch.zeros(config.n_items, config.n_items))
        self.register_buffer("history_indptr", torch.zeros(config.n_users + 1, dtype=torch.long))
        self.register_buffer(
            "history_indices", torch.zeros(config.n_interactions, dtype=torch.long)
        )

    def _histories(self, users: torch.Tensor) -> torch.Tensor:
        """The users' rows of X as a sparse (len(users), n_items) matrix."""
        starts, ends = self.history_indptr[users], self.history_indptr[users + 1]
        counts = ends - starts
        rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), counts)
        offsets = torch.cumsum(counts, 0) - counts
        positions = (
            torch.arange(int(counts.sum()), device=users.device)
            - torch.repeat_interleave(offsets, counts)
            + torch.repeat_interleave(starts, counts)
        )
        columns = self.history_indices[positions]
        values = torch.ones(len(columns), device=users.device)
        return torch.sparse_coo_tensor(
            torch.stack([rows, columns]),
            values,
            (len(users), self.config.n_items),
            check_invariants=False,  # built from our own CSR buffers
        )

    @torch.no_grad()
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(self._histories(users), self.item_weights)

    @torch.no_grad()
    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.score_all_items(users)[:, items]

    @torch.no_grad()
    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        unique_users, rows = torch.unique(users, return_inverse=True)
        return self.score_all_items(unique_users)[rows, items]

    @torch.no_grad()
    def fold_in(
        self, items: torch.Tensor, ratings: torch.Tensor, liked: torch.Tensor, steps: int = 0
    ) -> torch.Tensor:
        """Exact, no solve needed: a user's scores are their interaction row times B."""
        history = torch.zeros(self.config.n_items, device=self.item_weights.device)
        history[items] = 1.0
        return history @ self.item_weights

    def item_embeddings(self) -> torch.Tensor:
        """Each item's column of weights: items that co-occur with the same items are alike."""
        return self.item_weights.T.contiguous()


def fit_ease(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, l2: float = 250.0
) -> EASE:
    """Solve EASE on (user, item) interaction pairs (repeats count once).

    Raises CatalogTooLargeError above ``MAX_ITEMS`` items, before allocating anything.
    """
    if n_items > MAX_ITEMS:
        raise CatalogTooLargeError(
            f"EASE needs two {n_items:,} x {n_items:,} matrices (about "
            f"{2 * 4 * n_items**2 / 1e9:.0f} GB); it is limited to {MAX_ITEMS:,} items: "
            "use a factor model (dot or nn) for this catalog"
        )
    interactions = scipy.sparse.csr_matrix(
        (np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items)
    )
    interactions.sum_duplicates()
    interactions.data[:] = 1.0
    interactions.sort_indices()
    gram = torch.from_numpy((interactions.T @ interactions).toarray())
    gram.diagonal().add_(l2)
    precision = torch.linalg.inv(gram)
    del gram
    precision /= -precision.diagonal().clone()
    precision.diagonal().zero_()
    model = EASE(EASEConfig(n_users, n_items, interactions.nnz, l2))
    model.item_weights.copy_(precision)
    model.history_indptr.copy_(torch.from_numpy(interactions.indptr.astype(np.int64)))
    model.history_indices.copy_(torch.from_numpy(interactions.indices.astype(np.int64)))
    return model
