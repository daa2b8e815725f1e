"""iALS (Hu, Koren and Volinsky, 2008): implicit alternating least squares, in torch.

Every (user, item) pair counts: a rated pair is a preference of 1 with confidence
``1 + alpha * w`` (w = 1 for a liked item, ``low_weight`` for the rest), an unrated
pair a preference of 0 with confidence 1. Minimise
Σ c_ui (p_ui - x_u · y_i)² + λ (Σ ||x_u||² + Σ ||y_i||²)
by turns: with the items fixed, each user's vector solves
(YᵀY + Y_uᵀ (C_u - I) Y_u + λI) x_u = Y_uᵀ C_u p_u, and the other way round. YᵀY is
shared by all, so a user costs O(|items rated| · d) per conjugate-gradient step
(Takács, Pilászy and Tikk, 2011: a few steps from the last sweep's vector suffice).

Rows are solved in chunks of users (or items) with similar counts, padded to the
chunk's longest row: each chunk's gathered vectors stay in cache across the CG steps,
and the same code runs on a GPU. Scores are inner products, so an approximate index
can search them; folding in a user is the same solve, exact, against the fixed items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recsys.models.scorer import CollabScorer

CG_STEPS = 3

# Padded entries per chunk of rows: a chunk's (rows x longest row x d) gathered vectors
# take 16,384 x d x 4 bytes (4 MiB at 64 factors), and few rows are padded much.
CHUNK_ENTRIES = 16_384


@dataclass(frozen=True)
class IALSConfig:
    n_users: int
    n_items: int
    n_factors: int = 64
    l2: float = 1.0  # λ: the ridge on every vector
    alpha: float = 10.0  # confidence of a rated pair: 1 + alpha * weight
    low_weight: float = 1.0  # a rating below "liked" weighs this much (liked: 1)
    # Users' vectors were solved with each rating's weight halved every half_life newer
    # ratings of theirs (0: no decay); folding in treats every rating as recent.
    half_life: float = 0.0


class IALS(CollabScorer):
    """User and item vectors whose inner products rank items; no rating scale."""

    user_factors: torch.Tensor  # buffers: filled by the solver, not by gradients
    item_factors: torch.Tensor

    def __init__(self, config: IALSConfig) -> None:
        super().__init__()
        self.config = config
        self.n_users, self.n_items = config.n_users, config.n_items
        self.rating_range = None
        self.register_buffer("user_factors", torch.zeros(config.n_users, config.n_factors))
        self.register_buffer("item_factors", torch.zeros(config.n_items, config.n_factors))

    @torch.no_grad()
    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user_factors[users] * self.item_factors[items]).sum(1)

    @torch.no_grad()
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_factors[users] @ self.item_factors.T

    @torch.no_grad()
    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.user_factors[users] @ self.item_factors[items].T

    def item_embeddings(self) -> torch.Tensor:
        return self.item_factors

    def user_embeddings(self) -> torch.Tensor:
        return self.user_factors

    def item_search_vectors(self) -> torch.Tensor:
        return self.item_factors

    def user_search_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_factors[users]

    @torch.no_grad()
    def fold_in(
        self, items: torch.Tensor, ratings: torch.Tensor, liked: torch.Tensor, steps: int = 0
    ) -> torch.Tensor:
        """Exact: the one solve that a sweep gives a user, against the fixed item vectors
        (``steps`` does not apply)."""
        config = self.config
        factors = self.item_factors
        weights = torch.where(liked, 1.0, config.low_weight).to(factors)
        confidence = 1.0 + config.alpha * weights
        rated = factors[items]
        system = factors.T @ factors + (rated.T * (confidence - 1.0)) @ rated
        system.diagonal().add_(config.l2)
        vector = torch.linalg.solve(system, rated.T @ confidence)
        return factors @ vector


@dataclass(frozen=True)
class Rows:
    """One side's rated pairs in CSR order (rows: users or items), with confidences."""

    indptr: np.ndarray
    indices: np.ndarray
    confidence: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray, columns: np.ndarray, confidence: np.ndarray, n_rows: int) -> Rows:
        order = np.lexsort((columns, rows))
        counts = np.bincount(rows, minlength=n_rows)
        return cls(
            np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            columns[order].astype(np.int64),
            confidence[order].astype(np.float32),
        )

    def chunks(self, device: torch.device) -> list[tuple[torch.Tensor, ...]]:
        """(rows, padded columns, padded confidence - 1, padded confidence) per chunk of
        rows with similar counts; padding has confidence 0, so it adds nothing."""
        counts = np.diff(self.indptr)
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] > 0]
        chunks: list[tuple[torch.Tensor, ...]] = []
        start = 0
        while start < len(order):
            longest = int(counts[order[start]])
            size = max(1, CHUNK_ENTRIES // longest)
            rows = order[start : start + size]
            start += size
            lengths = counts[rows]
            positions = np.arange(longest)[None, :]
            valid = positions < lengths[:, None]
            flat = (self.indptr[rows][:, None] + positions)[valid]
            columns = np.zeros((len(rows), longest), dtype=np.int64)
            confidence = np.zeros((len(rows), longest), dtype=np.float32)
            columns[valid] = self.indices[flat]
            confidence[valid] = self.confidence[flat]
            padded = torch.from_numpy(confidence).to(device)
            chunks.append(
                (
                    torch.from_numpy(rows).to(device),
                    torch.from_numpy(columns).to(device),
                    torch.where(padded > 0, padded - 1.0, 0.0),
                    padded,
                )
            )
        return chunks


@torch.no_grad()
def solve_side(
    solved: torch.Tensor,
    fixed: torch.Tensor,
    chunks: list[tuple[torch.Tensor, ...]],
    l2: float,
    steps: int = CG_STEPS,
) -> None:
    """One half-sweep: ``steps`` conjugate-gradient steps on every row of ``solved``,
    from its current value, against ``fixed``; in place."""
    gram = fixed.T @ fixed
    for rows, columns, extra, confidence in chunks:
        vectors = fixed[columns]  # (rows, longest, d)
        ridge = l2

        def product(
            v: torch.Tensor,
            vectors: torch.Tensor = vectors,
            extra: torch.Tensor = extra,
            ridge: float = ridge,
        ) -> torch.Tensor:
            along = torch.bmm(vectors, v.unsqueeze(2)).squeeze(2) * extra
            return v @ gram + ridge * v + torch.bmm(along.unsqueeze(1), vectors).squeeze(1)

        x = solved[rows]
        target = torch.bmm(confidence.unsqueeze(1), vectors).squeeze(1)
        residual = target - product(x)
        direction = residual.clone()
        norm = (residual * residual).sum(1)
        for _ in range(steps):
            moved = product(direction)
            step = norm / (direction * moved).sum(1).clamp_min(1e-20)
            x += step[:, None] * direction
            residual -= step[:, None] * moved
            new_norm = (residual * residual).sum(1)
            direction = residual + (new_norm / norm.clamp_min(1e-20))[:, None] * direction
            norm = new_norm
        solved[rows] = x
