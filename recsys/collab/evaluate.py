"""How good is a collaborative model: rating error, and top-N ranking quality.

Ranking protocol (per-user temporal split): for each user with at least one
held-out rating >= ``relevant_at`` (4 by default), rank every item the user did
not rate in training, take the top ``k``, and compare with the relevant held-out
items. Held-out items never seen in training are not in the validation set (see
``CollabData``), for the model and the baselines alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from recsys.collab.dataset import CollabData
from recsys.collab.interactions import Interactions
from recsys.collab.recommender import Recommender
from recsys.collab.top_k import top_k
from recsys.data.ids import LIKED_AT

if TYPE_CHECKING:  # the learners import this module
    from recsys.collab.collab_learner import CollabLearner

Scorer = Callable[[torch.Tensor], torch.Tensor]  # user indices (B,) -> scores (B, n_items)
RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")


def popularity_scorer(data: CollabData) -> Scorer:
    """Every user gets the items with the most training ratings: the baseline to beat."""
    counts = np.bincount(data.seen.indices, minlength=data.n_items)
    popularity = torch.from_numpy(counts.astype(np.float32))
    return lambda users: popularity.expand(len(users), -1).clone()


def model_scorer(learn: CollabLearner) -> Scorer:
    """Rank by the model's scores (predicted ratings, for a rating model)."""
    model = learn.scoring_model.eval()
    return lambda users: model.score_all_items(users.to(learn.device)).float().cpu()


def ranking_metrics(
    scorer: Scorer,
    seen: Interactions,
    valid_users: np.ndarray,
    valid_items: np.ndarray,
    valid_ratings: np.ndarray,
    n_items: int,
    k: int = 10,
    relevant_at: float = LIKED_AT,
    batch_users: int = 512,
) -> dict[str, float]:
    """precision@k, recall@k, NDCG@k, MAP@k, hit rate and catalog coverage, averaged over users."""
    relevant = valid_ratings >= relevant_at
    users = np.unique(valid_users[relevant])
    sums = dict.fromkeys(RANKING_METRICS[:-1], 0.0)
    recommended = np.zeros(n_items, dtype=bool)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    order = np.argsort(valid_users[relevant], kind="stable")
    rel_users, rel_items = valid_users[relevant][order], valid_items[relevant][order]
    for start in range(0, len(users), batch_users):
        batch = users[start : start + batch_users]
        scores = scorer(torch.from_numpy(batch))
        _, top_indices = top_k(scores, k, [seen.seen(int(user)) for user in batch])
        top = top_indices.cpu().numpy()
        is_relevant = np.zeros((len(batch), n_items), dtype=bool)
        lo, hi = (
            np.searchsorted(rel_users, batch, "left"),
            np.searchsorted(rel_users, batch, "right"),
        )
        for row in range(len(batch)):
            is_relevant[row, rel_items[lo[row] : hi[row]]] = True
        hits = np.take_along_axis(is_relevant, top, axis=1)  # (B, k)
        n_relevant = hi - lo
        n_hits = hits.sum(1)
        ideal = np.array([discounts[: min(n, k)].sum() for n in n_relevant])
        precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
        sums["precision"] += float((n_hits / k).sum())
        sums["recall"] += float((n_hits / n_relevant).sum())
        sums["ndcg"] += float(((hits * discounts).sum(1) / ideal).sum())
        sums["map"] += float(((precision_at * hits).sum(1) / np.minimum(n_relevant, k)).sum())
        sums["hit_rate"] += float((n_hits > 0).sum())
        recommended[top.ravel()] = True
    n_users = max(len(users), 1)
    results = {name: total / n_users for name, total in sums.items()}
    results["coverage"] = float(recommended.sum() / max(n_items, 1))
    results["users"] = float(len(users))
    return results


def evaluate(
    learn: CollabLearner,
    k: int = 10,
    relevant_at: float = LIKED_AT,
    test: pd.DataFrame | None = None,
) -> dict[str, dict[str, float]]:
    """Top-``k`` metrics of the learner (and rating errors, for a rating model), and of the
    popularity list beside it, on ``test`` (``user_id``, ``item_id``, ``rating``; pairs
    the learner does not know are left out) or else on the learner's own hold-out.
    Candidates are the items a user did not rate in the learner's training data."""
    data = learn.data
    if test is None:
        x, y = (t.cpu() for t in data.dls.valid.tensors)
        users, items, ratings = x[:, 0].numpy(), x[:, 1].numpy(), y.numpy()
    else:
        users = pd.Index(data.user_map.ids).get_indexer(test["user_id"])
        items = pd.Index(data.item_map.ids).get_indexer(test["item_id"])
        known = (users >= 0) & (items >= 0)
        users, items = users[known], items[known]
        ratings = test["rating"].to_numpy(np.float32)[known]
    rating = {}
    model = learn.scoring_model.eval()
    if model.rating_range is not None:  # its scores are ratings
        with torch.no_grad():
            predictions = model.score_pairs(
                torch.from_numpy(users).to(learn.device), torch.from_numpy(items).to(learn.device)
            )
        errors = predictions.float().cpu().numpy() - ratings
        rating = {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}
    results = {}
    for name, scorer, extra in (
        (type(model).__name__, model_scorer(learn), rating),
        ("popularity", popularity_scorer(data), {}),
    ):
        metrics = ranking_metrics(
            scorer, data.seen, users, items, ratings, data.n_items, k, relevant_at
        )
        results[name] = {**extra, **metrics}
    return results


def compare_ratings(
    learn: CollabLearner, active: Recommender, rows: np.ndarray | None = None
) -> tuple[float, float, int]:
    """RMSE of the learner and of ``active`` on the learner's held-out ratings (those of
    ``rows``, when given) whose user and item ``active`` knows (lower is better), and
    how many ratings that is."""
    x, _y = (t.cpu() for t in learn.data.dls.valid.tensors)
    users = learn.data.user_map.ids[x[:, 0].numpy()]
    items = learn.data.item_map.ids[x[:, 1].numpy()]
    known = pd.Series(users).isin(active.user_map.ids).to_numpy() & (
        pd.Series(items).isin(active.item_map.ids).to_numpy()
    )
    if rows is not None:
        known &= rows
    if not known.any():
        return float("nan"), float("nan"), 0
    new_predictions, targets = (t.cpu().numpy() for t in learn.get_preds())
    old_predictions = active.predict(
        pd.DataFrame({"user_id": users[known], "item_id": items[known]})
    ).ratings

    def rmse(predictions: np.ndarray) -> float:
        return float(np.sqrt(np.mean((predictions - targets[known]) ** 2)))

    return rmse(new_predictions[known]), rmse(old_predictions), int(known.sum())


def compare_rankings(
    learn: CollabLearner, active: Recommender, rows: np.ndarray | None = None
) -> tuple[float, float, int]:
    """NDCG@10 of the learner and of ``active`` on the held-out users both know, from
    their held-out ratings (those of ``rows``, when given); higher is better, and
    ``active`` cannot recommend items it never saw. Also how many users."""
    data = learn.data
    user_lookup = np.array([active.user_map.position(u) for u in data.user_map.ids])
    item_lookup = torch.from_numpy(
        np.array([active.item_map.position(i) for i in data.item_map.ids], dtype=np.int64)
    )
    known_items = item_lookup >= 0
    x, y = (t.cpu() for t in data.dls.valid.tensors)
    keep = user_lookup[x[:, 0].numpy()] >= 0
    if rows is not None:
        keep &= rows
    valid = (x[keep, 0].numpy(), x[keep, 1].numpy(), y[keep].numpy())

    def old_scores(users: torch.Tensor) -> torch.Tensor:
        theirs = active.model.score_all_items(torch.from_numpy(user_lookup[users.numpy()]))
        scores = torch.full((len(users), data.n_items), -torch.inf)
        scores[:, known_items] = theirs.float()[:, item_lookup[known_items]]
        return scores

    new, old = (
        ranking_metrics(scorer, data.seen, *valid, data.n_items)
        for scorer in (model_scorer(learn), old_scores)
    )
    return new["ndcg"], old["ndcg"], int(new["users"])
