"""A model for tabular rows: categorical embeddings plus normalised continuous columns -> MLP."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from recsys.models.layers import embedding_size, sigmoid_range


@dataclass(frozen=True)
class TabularModelConfig:
    cardinalities: tuple[int, ...]  # categories per categorical input
    n_cont: int
    n_out: int  # classes, or 1 for regression
    layers: tuple[int, ...] = field(default=(200, 100))
    dropout: float = 0.0
    embedding_dropout: float = 0.0
    y_range: tuple[float, float] | None = None  # regression output squashed into this range


class TabularModel(nn.Module):
    """One embedding per categorical column (rule-of-thumb width), dropout on them,
    batch-normalised continuous inputs, then Linear -> ReLU -> BatchNorm -> Dropout blocks.

    ``forward(x_cat, x_cont)`` returns logits (rows, n_out) for classification, or
    values (rows,) for regression (``n_out == 1``).
    """

    def __init__(self, config: TabularModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, embedding_size(n)) for n in config.cardinalities
        )
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.cont_norm = nn.BatchNorm1d(config.n_cont) if config.n_cont else None
        width = sum(embedding_size(n) for n in config.cardinalities) + config.n_cont
        blocks: list[nn.Module] = []
        for size in config.layers:
            blocks += [
                nn.Linear(width, size),
                nn.ReLU(),
                nn.BatchNorm1d(size),
                nn.Dropout(config.dropout),
            ]
            width = size
        blocks.append(nn.Linear(width, config.n_out))
        self.mlp = nn.Sequential(*blocks)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.embeddings:
            embedded = [e(x_cat[:, i]) for i, e in enumerate(self.embeddings)]
            parts.append(self.embedding_dropout(torch.cat(embedded, dim=1)))
        if self.cont_norm is not None:
            parts.append(self.cont_norm(x_cont))
        out = self.mlp(torch.cat(parts, dim=1))
        if self.config.n_out > 1:
            return out
        out = out[:, 0]
        return out if self.config.y_range is None else sigmoid_range(out, *self.config.y_range)
