"""The one top-k routine: best-scored items per row, after exclusions and a candidate mask.

Every ranked answer goes through :func:`top_k` — recommendations, similar items
and users, evaluation — so "left out" means the same thing everywhere: the
masks are applied to the scores *before* the cut, so a user asking for 10 items
gets 10 items they may see whenever that many exist.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def top_k(
    scores: torch.Tensor,
    k: int,
    exclude_rows: Sequence[np.ndarray] | None = None,
    exclude: np.ndarray | None = None,
    allowed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best columns of each row of ``scores`` (B, n): (values, indices), each (B, k').

    Args:
        scores: may be modified in place (pass a copy to keep it).
        k: how many; k' = min(k, n).
        exclude_rows: per row, the column indices it must not return (a user's seen items).
        exclude: column indices no row may return.
        allowed: a bool mask (n,) of the columns that may be returned.

    Masked columns score -inf; a row with fewer than k eligible columns has -inf
    values at its end — :func:`finite_rows` drops them.
    """
    scores = scores.contiguous()
    n_columns = scores.shape[1]
    if allowed is not None:
        scores.masked_fill_(~allowed.to(scores.device), -torch.inf)
    if exclude is not None and len(exclude):
        columns = torch.from_numpy(np.asarray(exclude, dtype=np.int64)).to(scores.device)
        scores.index_fill_(1, columns, -torch.inf)
    if exclude_rows is not None:
        lengths = [len(r) for r in exclude_rows]
        if sum(lengths):
            # One fill of flat positions for every row's exclusions (a few torch calls
            # fewer than indexing by rows and columns: this runs on every request).
            rows = np.repeat(np.arange(len(exclude_rows)), lengths)
            flat = rows * n_columns + np.concatenate(exclude_rows).astype(np.int64)
            positions = torch.from_numpy(flat).to(scores.device)
            scores.view(-1).index_fill_(0, positions, -torch.inf)
    return torch.topk(scores, min(k, n_columns), dim=1)


def finite_rows(values: torch.Tensor, indices: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each row of a :func:`top_k` answer as (indices, values) arrays, masked entries dropped."""
    values_np, indices_np = values.float().cpu().numpy(), indices.cpu().numpy()
    keep = np.isfinite(values_np)
    if keep.all():  # the usual case, without a boolean index per row
        return list(zip(indices_np, values_np, strict=True))
    return [
        (row_indices[row_keep], row_values[row_keep])
        for row_indices, row_values, row_keep in zip(indices_np, values_np, keep, strict=True)
    ]
