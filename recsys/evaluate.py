"""How good is a collaborative model: rating error, and top-N ranking quality.

Ranking protocol (per-user temporal split): for each user with at least one
held-out rating >= ``relevant_at`` (4 by default), rank every item the user did
not rate in training, take the top ``k``, and compare with the relevant held-out
items. Held-out items never seen in training are not in the validation set (see
``CollabData``), for the model and the baselines alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from recsys.collab import CollabData, CollabLearner
from recsys.recommend import SeenItems

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
    seen: SeenItems,
    valid_users: np.ndarray,
    valid_items: np.ndarray,
    valid_ratings: np.ndarray,
    n_items: int,
    k: int = 10,
    relevant_at: float = 4.0,
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
        for row, user in enumerate(batch):
            scores[row, torch.from_numpy(seen.of(int(user)))] = -torch.inf
        top = torch.topk(scores, min(k, n_items), dim=1).indices.numpy()
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
    learn: CollabLearner, k: int = 10, relevant_at: float = 4.0
) -> dict[str, dict[str, float]]:
    """Top-``k`` metrics of the learner (and rating errors, for a rating model), and of the
    popularity list beside it."""
    data = learn.data
    x, y = (t.cpu() for t in data.dls.valid.tensors)
    users, items, ratings = x[:, 0].numpy(), x[:, 1].numpy(), y.numpy()
    rating = {}
    if learn.objective == "rating":
        predictions, targets = learn.get_preds()
        rating = {
            "rmse": float(torch.sqrt(torch.mean((predictions - targets) ** 2))),
            "mae": float(torch.mean(torch.abs(predictions - targets))),
        }
    results = {}
    for name, scorer, extra in (
        (type(learn.scoring_model).__name__, model_scorer(learn), rating),
        ("popularity", popularity_scorer(data), {}),
    ):
        metrics = ranking_metrics(
            scorer, data.seen, users, items, ratings, data.n_items, k, relevant_at
        )
        results[name] = {**extra, **metrics}
    return results
