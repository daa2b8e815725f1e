"""Validation metrics: functions of all predictions and targets of the validation set."""

from __future__ import annotations

import torch


def rmse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Root mean squared error."""
    return torch.sqrt(torch.mean((predictions.float() - targets.float()) ** 2))


def mae(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return torch.mean(torch.abs(predictions.float() - targets.float()))


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose highest-scoring class is the target."""
    return (logits.argmax(dim=1) == targets).float().mean()


def error_rate(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - accuracy."""
    return 1 - accuracy(logits, targets)
