"""The learner every ranking model trains on: what it measures on the hold-out (NDCG@k
and the rest, on a fixed sample of validation users per epoch, then on all of them)
and which weights it keeps (the best-NDCG epoch's). The factor models (recsys.collab.
ranking) and EASE (recsys.collab.ease_learner) are ranking learners."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from recsys.collab.collab_learner import CollabLearner, SolvedFit
from recsys.collab.evaluate import compare_rankings, model_scorer, ranking_metrics
from recsys.collab.recommender import Recommender
from recsys.data.ids import LIKED_AT
from recsys.train.callbacks import Callback

LOW_RATING_WEIGHT = 0.25  # weight of a rating below 4 relative to a liked item
# Epochs are compared on a fixed sample of this many validation users (all of them when
# there are fewer), so per-epoch validation does not grow with the user count; the
# weights kept are measured on every validation user at the end.
VALIDATION_SAMPLE_USERS = 5_000


class RankingMetrics(Callback):
    """Adds top-``k`` metrics of a fixed sample of validation users to each epoch's
    results; when the fit ends, measures the kept weights on every validation user
    and records them in their epoch's row. Runs after ``SaveBest`` restores them."""

    order = 72

    def __init__(
        self,
        k: int = 10,
        relevant_at: float = LIKED_AT,
        sample_users: int | None = None,
    ) -> None:
        self.k = k
        self.relevant_at = relevant_at
        self.sample_users = VALIDATION_SAMPLE_USERS if sample_users is None else sample_users

    @property
    def ranker(self) -> RankingLearner:
        """The learner it is added to: a ranking one (see RankingLearner)."""
        return cast(RankingLearner, self.learn)

    def before_fit(self) -> None:
        self.ranker.kept_epoch = None
        self.sample = self.ranker.validation_sample(self.sample_users)

    def after_validate(self) -> None:
        results = self.ranker.ranking_metrics(self.k, self.relevant_at, users=self.sample)
        self.learn.valid_results.update(results)

    def after_fit(self) -> None:
        rows = self.learn.recorder.rows
        if self.sample is None or not rows or "ndcg" not in rows[0]:
            return
        kept = max(rows, key=lambda row: row["ndcg"])  # SaveBest's choice, on the sample
        kept.update(self.ranker.ranking_metrics(self.k, self.relevant_at), ndcg_sample=kept["ndcg"])
        self.ranker.kept_epoch = kept["epoch"]


class RankingLearner(CollabLearner):
    """A collaborative learner whose model scores items for ranking (no rating scale).

    The weights kept are those of the best-NDCG epoch (``SaveBest``), so those are
    the metrics it reports.
    """

    objective = "ranking"
    selection_metric = "ndcg"
    selection_label = "NDCG@10"
    compared_unit = "users"
    higher_is_better = True
    reported_metrics = (
        "ndcg", "precision", "recall", "map", "hit_rate", "coverage", "valid_loss", "train_loss"
    )  # fmt: skip
    summary_metrics = ("ndcg", "recall", "coverage")

    kept_epoch: float | None = None  # set when epochs were compared on a user sample

    def served_metrics(self) -> dict[str, float]:
        rows = self.recorder.rows
        if self.kept_epoch is not None:
            best = next(row for row in rows if row["epoch"] == self.kept_epoch)
        else:
            best = max(rows, key=lambda row: row["ndcg"])
        return {name: best[name] for name in self.reported_metrics if name in best} | {
            "epoch": best["epoch"]
        }

    def compare_with(
        self, active: Recommender, rows: np.ndarray | None = None
    ) -> tuple[float, float, int]:
        return compare_rankings(self, active, rows)

    def chosen_settings(self) -> dict[str, Any]:
        """The best-NDCG epoch's count: the weights kept are that epoch's."""
        return {"epochs": int(self.served_metrics()["epoch"]) + 1}

    def validation_sample(self, n_users: int = VALIDATION_SAMPLE_USERS) -> np.ndarray | None:
        """A fixed random sample of ``n_users`` validation users (model indices) to compare
        epochs on; None when there are no more than that."""
        x, _ = self.data.dls.valid.tensors
        users = np.unique(x[:, 0].cpu().numpy())
        if len(users) <= n_users:
            return None
        return np.sort(np.random.default_rng(0).choice(users, n_users, replace=False))

    def ranking_metrics(
        self, k: int = 10, relevant_at: float = LIKED_AT, users: np.ndarray | None = None
    ) -> dict[str, float]:
        """precision/recall/NDCG/MAP@k, hit rate and coverage on the validation users (only
        ``users``, model indices, when given)."""
        x, y = (t.cpu().numpy() for t in self.data.dls.valid.tensors)
        rows = slice(None) if users is None else np.isin(x[:, 0], users)
        metrics = ranking_metrics(
            model_scorer(self),  # eval mode; a fit puts the model back in training mode
            self.data.seen,
            x[rows, 0],
            x[rows, 1],
            y[rows],
            self.data.n_items,
            k,
            relevant_at,
        )
        metrics.pop("users")
        return metrics


class SolvedRankingLearner(SolvedFit, RankingLearner):
    """A ranking model solved rather than trained by gradient steps (EASE, iALS, a blend
    of them): see :class:`recsys.collab.collab_learner.SolvedFit`."""
