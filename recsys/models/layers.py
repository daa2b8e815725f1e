"""Small pieces the models share."""

from __future__ import annotations

import torch
from torch import nn


def embedding_size(n_categories: int) -> int:
    """fastai's rule of thumb for an embedding width: min(600, round(1.6 * n^0.56))."""
    return min(600, round(1.6 * n_categories**0.56))


def sigmoid_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Squash into (low, high); a range slightly wider than the ratings lets 5s be reached."""
    return torch.sigmoid(x) * (high - low) + low


def embedding_table(n_rows: int, n_columns: int, std: float = 0.01) -> nn.Parameter:
    """A table of small normal values, created explicitly rather than via nn.Embedding."""
    return nn.Parameter(torch.randn(n_rows, n_columns) * std)
