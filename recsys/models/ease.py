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
import torch
from torch import nn

MAX_ITEMS = 30_000  # two 30k x 30k float32 matrices are 7 GiB


@dataclass(frozen=True)
class EASEConfig:
    n_users: int
    n_items: int
    l2: float = 500.0


class EASE(nn.Module):
    """Item-item weights B and each user's interactions; scores = X[users] @ B."""

    def __init__(self, config: EASEConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("item_weights", torch.zeros(config.n_items, config.n_items))
        self.register_buffer("interactions", torch.zeros(config.n_users, config.n_items))

    @torch.no_grad()
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        """Ranking scores of every item for each user: (len(users), n_items)."""
        return self.interactions[users] @ self.item_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of (user, item) pairs, read like the other collaborative models."""
        scores = self.interactions[x[:, 0]] * self.item_weights[:, x[:, 1]].T  # (B, n_items)
        return scores.sum(1)

    def item_embeddings(self) -> torch.Tensor:
        """Each item's column of weights: items that co-occur with the same items are alike."""
        return self.item_weights.T.contiguous()


def fit_ease(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, l2: float = 500.0
) -> EASE:
    """Solve EASE on (user, item) interaction pairs (repeats count once)."""
    if n_items > MAX_ITEMS:
        raise ValueError(
            f"EASE needs two {n_items:,} x {n_items:,} matrices (about "
            f"{2 * 4 * n_items**2 / 2**30:.0f} GiB); it is limited to {MAX_ITEMS:,} items: "
            "use a factor model for this catalog"
        )
    model = EASE(EASEConfig(n_users, n_items, l2))
    x = model.interactions
    x[torch.tensor(users, dtype=torch.long), torch.tensor(items, dtype=torch.long)] = 1.0
    gram = (x.T @ x).double()
    gram.diagonal().add_(l2)
    precision = torch.linalg.inv(gram)
    weights = -precision / precision.diagonal()
    weights.diagonal().zero_()
    model.item_weights.copy_(weights.float())
    return model
