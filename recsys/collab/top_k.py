"""The one top-k routine: best-scored items per row, after exclusions and a candidate mask.

Every ranked answer goes through :func:`top_k` — recommendations (exact or from the
approximate index's candidates), similar items and users, the popular list,
evaluation — so "left out" means the same thing everywhere: the masks are applied to
the scores *before* the cut, so a user asking for 10 items gets 10 items they may see
whenever that many exist.
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
    candidates: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best items of each row of ``scores``: (values, item indices), each (B, k').

    Args:
        scores: (B, n) a score per item; or, with ``candidates``, (B, m) a score per
            candidate. May be modified in place (pass a copy to keep it).
        k: how many; k' = min(k, n) (or m).
        exclude_rows: per row, the items it must not return (a user's seen items).
        exclude: items no row may return.
        allowed: a bool mask (n_items,) of the items that may be returned.
        candidates: (B, m) the item of each column of ``scores``, per row (-1: none) —
            the approximate index's candidates, scored exactly. The same rules apply to
            their items, and the indices returned are items.

    Masked entries score -inf; a row with fewer than k eligible items has -inf values
    at its end — :func:`finite_rows` drops them.
    """
    if candidates is not None:
        return _top_k_of_candidates(scores, k, exclude_rows, exclude, allowed, candidates)
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


def _top_k_of_candidates(
    scores: torch.Tensor,
    k: int,
    exclude_rows: Sequence[np.ndarray] | None,
    exclude: np.ndarray | None,
    allowed: torch.Tensor | None,
    candidates: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`top_k`'s rules on per-row candidate items (see its ``candidates``)."""
    blocked = candidates < 0
    if allowed is not None:
        blocked |= ~allowed.cpu().numpy()[np.maximum(candidates, 0)]
    if exclude is not None and len(exclude):
        blocked |= np.isin(candidates, exclude)
    if exclude_rows is not None:
        for row, excluded in enumerate(exclude_rows):
            if len(excluded):
                blocked[row] |= np.isin(candidates[row], excluded)
    scores = scores.contiguous()
    scores.masked_fill_(torch.from_numpy(blocked).to(scores.device), -torch.inf)
    values, positions = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    items = torch.gather(torch.from_numpy(candidates).to(scores.device), 1, positions)
    return values, items


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
