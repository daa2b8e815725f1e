"""Collaborative models trained to rank: the items a user picks next, not their ratings.

A model fitted to ratings recommends well-rated middle-popularity items; what a
user actually chooses next is better predicted by training on the choices
themselves. Ranking learners read the same ``CollabData`` (every rating is an
interaction "the user chose this item", weighted by how much they liked it) and
train the same embedding models on the shared ``Learner`` with sampled
negatives: a sampled softmax with popularity-corrected sampling by default, or
BPR. After each epoch they compute top-k metrics (NDCG@k and the rest, see
``recsys.collab.evaluate``) on the validation users, and keep the weights of the epoch
with the best NDCG. Validation should be a per-user temporal split (each user's
latest ratings), which is what ``TrainConfig`` uses for ranking.

EASE, the closed-form item-item model, is a ranking learner too: its "fit" is
one d x d solve, and what it chooses on the hold-out is the half-life of the
recency weighting it scores with (see recsys.models.ease).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from recsys.collab.collab_learner import CollabLearner, default_sparse
from recsys.collab.dataset import LARGE_DATA_ROWS, CollabData
from recsys.collab.evaluate import compare_rankings, model_scorer, ranking_metrics
from recsys.collab.recommender import Recommender
from recsys.data.loaders import DataLoaders, TensorBatches
from recsys.data.ratings import LIKED_AT
from recsys.data.sampling import NegativeSampledBatches
from recsys.models.dot_product_bias import DotProductBias, DotProductBiasConfig
from recsys.models.ease import EASE, EASEConfig, History, fit_ease
from recsys.models.two_tower import TwoTower, TwoTowerConfig
from recsys.train.callbacks import Callback, SaveBest
from recsys.train.learner import FitDefaults
from recsys.train.losses import (
    PairwiseScores,
    SampledSoftmaxScores,
    bpr_loss,
    weighted_softmax_loss,
)

# Chosen with `benchmarks/ranking.py` on MovieLens-100k (per-user temporal split);
# see the README for the figures.
RANKING_DOT_DEFAULTS = {"n_factors": 64, "fit": FitDefaults(n_epoch=20, lr_max=1e-2, wd=0.3)}
# The deep model ranks as two towers (recsys.models.two_tower): each tower's hidden widths.
RANKING_NN_DEFAULTS = {"layers": (128,), "fit": FitDefaults(n_epoch=20, lr_max=1e-2, wd=0.3)}
RANKING_BATCH_SIZE = 1024  # below a million ratings; above, the rating models' 4096
N_NEGATIVES = {"dot": 512, "nn": 512}  # items drawn per batch for the sampled softmax
POPULARITY_ALPHA = 0.75  # negatives are drawn with probability ∝ count^alpha
LOW_RATING_WEIGHT = 0.25  # weight of a rating below 4 relative to a liked item
EASE_L2 = 250.0
# EASE's scoring rows: half-lives (in ratings; 0 = no decay) tried on the hold-out,
# and the one used when there is nothing to choose on.
HALF_LIVES, EASE_HALF_LIFE = (0.0, 5.0, 10.0, 20.0, 40.0), 10.0

# Epochs are compared on a fixed sample of this many validation users (all of them when
# there are fewer), so per-epoch validation does not grow with the user count; the
# weights kept are measured on every validation user at the end.
VALIDATION_SAMPLE_USERS = 5_000

RankingModel = Literal["dot", "nn", "ease"]


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

    def before_fit(self) -> None:
        self.learn.kept_epoch = None
        x, _ = self.learn.data.dls.valid.tensors
        users = np.unique(x[:, 0].cpu().numpy())
        self.sample = None
        if len(users) > self.sample_users:
            rng = np.random.default_rng(0)
            self.sample = np.sort(rng.choice(users, self.sample_users, replace=False))

    def after_validate(self) -> None:
        results = self.learn.ranking_metrics(self.k, self.relevant_at, users=self.sample)
        self.learn.valid_results.update(results)

    def after_fit(self) -> None:
        rows = self.learn.recorder.rows
        if self.sample is None or not rows or "ndcg" not in rows[0]:
            return
        kept = max(rows, key=lambda row: row["ndcg"])  # SaveBest's choice, on the sample
        kept.update(self.learn.ranking_metrics(self.k, self.relevant_at), ndcg_sample=kept["ndcg"])
        self.learn.kept_epoch = kept["epoch"]


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


class EASELearner(RankingLearner):
    """EASE behind the learner interface. It is solved in closed form, so there is
    nothing to schedule: ``fit()`` / ``fit_one_cycle()`` solve it, and asking for
    epochs, a learning rate, weight decay, callbacks or ``lr_find`` is an error
    rather than silently ignored. Its settings are the ridge ``l2`` and the
    ``half_life`` of its recency-weighted scoring rows; with ``half_life=None`` and a
    hold-out, each of ``HALF_LIVES`` is tried and the best NDCG kept (ratings
    without times are scored without decay)."""

    def __init__(
        self,
        data: CollabData,
        l2: float = EASE_L2,
        k: int = 10,
        half_life: float | None = None,
        **kwargs: Any,
    ) -> None:
        placeholder = EASE(EASEConfig(data.n_users, data.n_items, 0, l2))
        super().__init__(data, placeholder, metrics=(), **kwargs)
        self.l2 = l2
        self.k = k
        self.half_life = half_life

    def fit(  # type: ignore[override]
        self,
        n_epoch: int | None = None,
        lr: float | None = None,
        wd: float | None = None,
        cbs: Sequence[Callback] = (),
    ) -> None:
        """Solve for the item-item weights, then choose the half-life on the hold-out."""
        given = {"epochs": n_epoch, "lr": lr, "wd": wd, "callbacks": cbs or None}
        _refuse_schedule({name: value for name, value in given.items() if value is not None})
        started = time.perf_counter()
        x, y = (t.cpu().numpy() for t in self.data.dls.train.tensors)
        times = self.data.train_times
        history = History.from_ratings(
            x[:, 0], x[:, 1], self.data.n_users, liked=y >= LIKED_AT, timestamps=times
        )
        has_valid = len(self.data.dls.valid) > 0  # none in a refit on all the data
        if self.half_life is not None:
            candidates: tuple[float, ...] = (self.half_life,)
        elif times is None:
            candidates = (0.0,)
        else:
            candidates = HALF_LIVES if has_valid else (EASE_HALF_LIFE,)
        model = fit_ease(history, self.data.n_items, self.l2, candidates[0], LOW_RATING_WEIGHT)
        self.model = self.train_model = model.to(self.device)
        rows = []
        for half_life in candidates:
            model.reweight(history, half_life, LOW_RATING_WEIGHT)
            results = self.ranking_metrics(self.k) if has_valid else {}
            rows.append({"epoch": 0.0, "half_life": half_life, **results})
        best = max(rows, key=lambda row: row.get("ndcg", 0.0))
        model.reweight(history, best["half_life"], LOW_RATING_WEIGHT)
        self.valid_results = {name: value for name, value in best.items() if name != "epoch"}
        self.recorder.rows = [{**best, "time": time.perf_counter() - started}]

    def fit_one_cycle(  # type: ignore[override]
        self,
        n_epoch: int | None = None,
        lr_max: float | None = None,
        wd: float | None = None,
        **schedule: Any,
    ) -> None:
        """The same solve as :meth:`fit`; there is no cycle to run."""
        given = {"epochs": n_epoch, "lr": lr_max, "wd": wd, **schedule}
        _refuse_schedule({name: value for name, value in given.items() if value is not None})
        self.fit()

    def lr_find(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("EASE is solved in closed form: it has no learning rate to find")

    def chosen_settings(self) -> dict[str, Any]:
        """The half-life chosen on the hold-out; the solve is the same on more data."""
        return {"half_life": self.model.config.half_life}


def _refuse_schedule(given: dict[str, Any]) -> None:
    if given:
        raise ValueError(
            f"EASE is solved in closed form; {', '.join(given)} do not apply "
            "(its one hyper-parameter is l2)"
        )


def ranking_learner(
    data: CollabData,
    model: RankingModel = "dot",
    n_factors: int | None = None,
    layers: Sequence[int] | None = None,
    loss: Literal["softmax", "bpr"] = "softmax",
    n_negatives: int | None = None,
    l2: float = EASE_L2,
    half_life: float | None = None,
    k: int = 10,
    sparse: bool | None = None,
    batch_size: int | None = None,
    cbs: Sequence[Callback] = (),
    **kwargs: Any,
) -> RankingLearner:
    """A learner that trains ``model`` to rank, validated by NDCG@``k``.

    ``dot`` is the rating model's architecture without the rating squash, ``nn``
    two towers that meet in a dot product (recsys.models.two_tower); both trained
    with ``loss`` (a sampled softmax over ``n_negatives``
    popularity-drawn items, or BPR with one uniform negative per interaction);
    the epoch with the best validation NDCG is kept. ``ease`` is solved in
    closed form with ridge ``l2`` and scores with recency ``half_life`` (None:
    chosen on the hold-out). Unset arguments take the tuned defaults; the
    batch size is 1024 below a million training ratings and the data's above.
    """
    if model == "ease":
        return EASELearner(data, l2, k, half_life, **kwargs)
    train = data.dls.train
    if batch_size is None:
        batch_size = RANKING_BATCH_SIZE if train.n_rows < LARGE_DATA_ROWS else train.batch_size
    # The batch order comes from torch's seed, so torch.manual_seed makes a run repeatable.
    order_seed = int(torch.randint(0, 2**62, ()))
    batches = TensorBatches(train.tensors, batch_size, shuffle=True, seed=order_seed)
    dls = DataLoaders(batches, data.dls.valid)
    if sparse is None:
        sparse = default_sparse(data, kwargs.get("device", "auto"))
    if model == "nn":
        scorer: torch.nn.Module = TwoTower(
            TwoTowerConfig(
                data.n_users,
                data.n_items,
                n_factors or RANKING_DOT_DEFAULTS["n_factors"],
                layers=tuple(layers or RANKING_NN_DEFAULTS["layers"]),
                sparse=sparse,
            )
        )
        defaults = RANKING_NN_DEFAULTS["fit"]
    elif model == "dot":
        scorer = DotProductBias(
            DotProductBiasConfig(
                data.n_users,
                data.n_items,
                n_factors or RANKING_DOT_DEFAULTS["n_factors"],
                y_range=None,
                sparse=sparse,
            )
        )
        defaults = RANKING_DOT_DEFAULTS["fit"]
    else:
        raise ValueError(f"model must be dot, nn or ease, not {model!r}")
    kwargs.setdefault("fit_defaults", defaults)
    kwargs.setdefault("wd", defaults.wd)
    cbs = [RankingMetrics(k), SaveBest("ndcg"), *cbs]
    n_negatives = N_NEGATIVES[model] if n_negatives is None else n_negatives
    if loss == "softmax":
        counts = torch.from_numpy(np.bincount(data.seen.indices, minlength=data.n_items))
        objective = SampledSoftmaxScores(scorer, counts, n_negatives, POPULARITY_ALPHA)
        return RankingLearner(
            data,
            objective,
            loss_func=weighted_softmax_loss(LOW_RATING_WEIGHT),
            metrics=(),
            dls=dls,
            cbs=cbs,
            **kwargs,
        )
    if loss == "bpr":
        return RankingLearner(
            data,
            PairwiseScores(scorer),
            loss_func=bpr_loss,
            metrics=(),
            dls=_negative_sampled(data, batch_size),
            cbs=cbs,
            **kwargs,
        )
    raise ValueError(f"loss must be softmax or bpr, not {loss!r}")


def _negative_sampled(data: CollabData, batch_size: int) -> DataLoaders:
    """(user, chosen item, uniform negative) triplets for BPR, training and validation."""
    train_x, _ = (t.cpu() for t in data.dls.train.tensors)
    valid_x, _ = (t.cpu() for t in data.dls.valid.tensors)
    return DataLoaders(
        NegativeSampledBatches(
            train_x[:, 0].numpy(), train_x[:, 1].numpy(), data.n_items, batch_size, seed=0
        ),
        NegativeSampledBatches(
            valid_x[:, 0].numpy(), valid_x[:, 1].numpy(), data.n_items, 4096, seed=1
        ),
    )
