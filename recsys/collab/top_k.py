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
        scores: modified in place (pass a copy to keep it).
        k: how many; k' = min(k, n).
        exclude_rows: per row, the column indices it must not return (a user's seen items).
        exclude: column indices no row may return.
        allowed: a bool mask (n,) of the columns that may be returned.

    Masked columns score -inf; a row with fewer than k eligible columns has -inf
    values at its end — :func:`finite_rows` drops them.
    """
    if allowed is not None:
        scores[:, ~allowed.to(scores.device)] = -torch.inf
    if exclude is not None and len(exclude):
        scores[
            :, torch.from_numpy(np.asarray(exclude, dtype=np.int64)).to(scores.device)
        ] = -torch.inf
    if exclude_rows is not None:
        lengths = [len(r) for r in exclude_rows]
        if sum(lengths):
            rows = np.repeat(np.arange(len(exclude_rows)), lengths)
            columns = np.concatenate(exclude_rows).astype(np.int64)
            device = scores.device
            scores[
                torch.from_numpy(rows).to(device), torch.from_numpy(columns).to(device)
            ] = -torch.inf
    return torch.topk(scores, min(k, scores.shape[1]), dim=1)


def finite_rows(values: torch.Tensor, indices: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each row of a :func:`top_k` answer as (indices, values) arrays, masked entries dropped."""
    values_np, indices_np = values.float().cpu().numpy(), indices.cpu().numpy()
    keep = np.isfinite(values_np)
    return [
        (row_indices[row_keep], row_values[row_keep])
        for row_indices, row_values, row_keep in zip(indices_np, values_np, keep, strict=True)
    ]
