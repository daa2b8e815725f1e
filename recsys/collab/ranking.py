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

EASE, the closed-form item-item model, is a ranking learner too
(recsys.collab.ease_learner); ``ranking_learner`` builds any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from recsys.collab.collab_learner import ModelDefaults, default_sparse
from recsys.collab.dataset import LARGE_DATA_ROWS, CollabData
from recsys.collab.ease_learner import EASELearner
from recsys.collab.ials_learner import IALSLearner
from recsys.collab.ranking_learner import LOW_RATING_WEIGHT, RankingLearner, RankingMetrics
from recsys.data.loaders import DataLoaders, TensorBatches
from recsys.data.sampling import NegativeSampledBatches
from recsys.models.dot_product_bias import DotProductBias, DotProductBiasConfig
from recsys.models.scorer import CollabScorer
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
RANKING_DOT_DEFAULTS = ModelDefaults(FitDefaults(n_epoch=20, lr_max=1e-2, wd=0.3), n_factors=64)
# The deep model ranks as two towers (recsys.models.two_tower): each tower's hidden widths.
RANKING_NN_DEFAULTS = ModelDefaults(FitDefaults(n_epoch=20, lr_max=1e-2, wd=0.3), layers=(128,))
RANKING_BATCH_SIZE = 1024  # below a million ratings; above, the rating models' 4096
N_NEGATIVES = {"dot": 512, "nn": 512}  # items drawn per batch for the sampled softmax
# What `recsys train` chooses from on the hold-out, costliest first: a quarter of the
# negatives is about a quarter of the logits' work (docs/scale.md).
NEGATIVES_CHOICES = (512, 128)
POPULARITY_ALPHA = 0.75  # negatives are drawn with probability ∝ count^alpha

RankingModel = Literal["dot", "nn", "ease", "ials"]


def ranking_learner(
    data: CollabData,
    model: RankingModel = "dot",
    n_factors: int | None = None,
    layers: Sequence[int] | None = None,
    loss: Literal["softmax", "bpr"] = "softmax",
    n_negatives: int | None = None,
    l2: float | None = None,
    half_life: float | None = None,
    alpha: float | None = None,
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
    closed form with ridge ``l2`` and scores with recency ``half_life`` (each
    None: chosen on the hold-out); ``ials`` sweeps alternating solves with ridge
    ``l2`` and confidence scale ``alpha`` (each None: chosen on the hold-out, see
    recsys.collab.ials_learner). Unset arguments take the tuned defaults; the
    batch size is 1024 below a million training ratings and the data's above.
    """
    if model == "ease":
        return EASELearner(data, l2, k, half_life, **kwargs)
    if model == "ials":
        return IALSLearner(data, n_factors, l2, alpha, half_life, k, **kwargs)
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
        scorer: CollabScorer = TwoTower(
            TwoTowerConfig(
                data.n_users,
                data.n_items,
                n_factors or RANKING_DOT_DEFAULTS.n_factors,
                layers=tuple(layers or RANKING_NN_DEFAULTS.layers),
                sparse=sparse,
            )
        )
        defaults = RANKING_NN_DEFAULTS.fit
    elif model == "dot":
        scorer = DotProductBias(
            DotProductBiasConfig(
                data.n_users,
                data.n_items,
                n_factors or RANKING_DOT_DEFAULTS.n_factors,
                y_range=None,
                sparse=sparse,
            )
        )
        defaults = RANKING_DOT_DEFAULTS.fit
    else:
        raise ValueError(f"model must be dot, nn, ease or ials, not {model!r}")
    kwargs.setdefault("fit_defaults", defaults)  # its wd too, unless given (see Learner)
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
