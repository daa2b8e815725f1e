"""Losses beyond the ones torch ships."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from recsys.data.ids import LIKED_AT
from recsys.models.scorer import CollabScorer


def bpr_loss(score_differences: torch.Tensor, _target: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: -log sigmoid(score(chosen) - score(negative))."""
    return -F.logsigmoid(score_differences).mean()


class TrainingObjective(nn.Module):
    """A scorer wrapped for training; the learner saves and serves ``scorer`` alone."""

    def __init__(self, scorer: CollabScorer) -> None:
        super().__init__()
        self.scorer = scorer

    def sparse_parameters(self) -> list[torch.Tensor]:
        return self.scorer.sparse_parameters()


class PairwiseScores(TrainingObjective):
    """A (user, item) scorer read on triplets: score(user, chosen) - score(user, negative)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scorer(x[:, [0, 1]]) - self.scorer(x[:, [0, 2]])


class SampledSoftmaxScores(TrainingObjective):
    """Softmax logits of each chosen item against items drawn by popularity.

    Reads ``x[:, 0]`` users and ``x[:, 1]`` the items they chose, and returns
    (B, 1 + M) logits: column 0 the chosen item, then ``n_negatives`` items drawn
    (shared by the batch) from q(i) ∝ count(i)^``alpha``. Every logit has log q(i)
    subtracted (the "logQ" correction of Yi et al., 2019), so the sampled loss
    estimates the full softmax instead of learning to push popular items down; a
    drawn item equal to the row's chosen item is masked. With ``n_negatives`` at
    least the catalog size, the candidates are simply every item (exact softmax).
    """

    probabilities: torch.Tensor  # buffers: q(i), and its log
    log_q: torch.Tensor

    def __init__(
        self, scorer: CollabScorer, item_counts: torch.Tensor, n_negatives: int, alpha: float = 0.75
    ) -> None:
        super().__init__(scorer)
        self.n_items = len(item_counts)
        self.n_negatives = n_negatives
        weights = item_counts.double().clamp_min(1.0) ** alpha
        self.register_buffer("probabilities", (weights / weights.sum()).float())
        self.register_buffer("log_q", self.probabilities.log())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        users, items = x[:, 0], x[:, 1]
        if self.n_negatives >= self.n_items:
            every = torch.arange(self.n_items, device=x.device)
            logits = self.scorer.score_candidates(users, every)
            # The chosen item first, so that the target is always column 0.
            return torch.cat([logits.gather(1, items[:, None]), _drop(logits, items)], dim=1)
        sampled = torch.multinomial(self.probabilities, self.n_negatives, replacement=True)
        chosen = self.scorer.score_pairs(users, items) - self.log_q[items]
        negative = self.scorer.score_candidates(users, sampled) - self.log_q[sampled]
        negative = negative.masked_fill(sampled[None, :] == items[:, None], -torch.inf)
        return torch.cat([chosen[:, None], negative], dim=1)


def _drop(logits: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Each row's logits with its own chosen item masked (it is already in column 0)."""
    return logits.scatter(1, items[:, None], -torch.inf)


def weighted_softmax_loss(
    low_weight: float = 0.5, liked_at: float = LIKED_AT
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy of column 0 (the chosen item), each row weighted by its rating:
    1 for ratings of ``liked_at`` or more, ``low_weight`` below."""

    def softmax_loss(logits: torch.Tensor, ratings: torch.Tensor) -> torch.Tensor:
        weights = torch.where(ratings >= liked_at, 1.0, low_weight).to(logits.dtype)
        targets = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
        losses = F.cross_entropy(logits, targets, reduction="none")
        return (losses * weights).sum() / weights.sum().clamp_min(1e-12)

    return softmax_loss
