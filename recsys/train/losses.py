"""Losses beyond the ones torch ships."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bpr_loss(score_differences: torch.Tensor, _target: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: -log sigmoid(score(chosen) - score(negative))."""
    return -F.logsigmoid(score_differences).mean()


class PairwiseScores(nn.Module):
    """A (user, item) scorer read on triplets: score(user, chosen) - score(user, negative)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x[:, [0, 1]]) - self.model(x[:, [0, 2]])
