"""The hybrid recommender: ratings plus user and item metadata, so newcomers get answers.

``hybrid_learner(data, users, items)`` trains :class:`HybridNN` on the ratings of
``data`` like the other collab models; ``users`` and ``items`` hold the metadata
(``user_id``, age, gender, occupation; ``item_id``, genres, release_date). Its
Recommender carries the metadata encoder, so it also answers for ids unseen in
training when their metadata is given (``recommend_for_profile``, ``predict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import torch

from recsys.collab.collab_learner import CollabLearner, ModelDefaults
from recsys.collab.dataset import CollabData
from recsys.collab.recommender_state import RecommenderState
from recsys.data.metadata import MetadataEncoder, aligned
from recsys.models.hybrid_net import HybridNN, HybridNNConfig
from recsys.train.learner import FitDefaults

# EmbeddingNN's tuned schedule. Id dropout 0.05-0.25, weight decay 0.05-1.0, lr 1e-2 and
# a wider MLP were tried on both splits of `benchmarks/hybrid.py`; none was clearly
# better on both (README).
HYBRID_DEFAULTS = ModelDefaults(FitDefaults(n_epoch=10, lr_max=2e-2, wd=0.5), layers=(100,))
ID_DROPOUT = 0.1


class HybridLearner(CollabLearner):
    """A CollabLearner whose model reads metadata; saves the metadata encoder with it."""

    def __init__(self, data: CollabData, model: HybridNN, encoder: MetadataEncoder, **kw: Any):
        super().__init__(data, model, **kw)
        self.encoder = encoder

    def recommender_state(self) -> RecommenderState:
        return replace(super().recommender_state(), metadata_encoder=self.encoder.state())


def hybrid_learner(
    data: CollabData,
    users: pd.DataFrame,
    items: pd.DataFrame,
    layers: Sequence[int] | None = None,
    id_dropout: float = ID_DROPOUT,
    n_factors: int | None = None,
    y_range: tuple[float, float] = (0.0, 5.5),
    **kwargs: Any,
) -> HybridLearner:
    """A HybridNN learner (MSE, RMSE/MAE). ``users`` has ``user_id`` and age / gender /
    occupation, ``items`` has ``item_id`` and genres / release_date; missing columns or
    rows mean unknown metadata. The encoder is fitted on the training users and items."""
    train_users = aligned(users, "user_id", data.user_map.ids)
    train_items = aligned(items, "item_id", data.item_map.ids)
    encoder = MetadataEncoder.fit(
        train_users.reindex(columns=["age", "gender", "occupation"]),
        train_items.reindex(columns=["genres", "release_date"]),
    )
    model = HybridNN(
        HybridNNConfig(
            data.n_users,
            data.n_items,
            user_cardinalities=encoder.user_cardinalities,
            n_genres=encoder.n_genre_columns,
            n_decades=encoder.n_decades,
            layers=tuple(layers or HYBRID_DEFAULTS.layers),
            id_dropout=id_dropout,
            n_factors=HYBRID_DEFAULTS.n_factors if n_factors is None else n_factors,
            y_range=y_range,
        )
    )
    genres, decades = encoder.encode_items(train_items)
    model.set_metadata(
        torch.from_numpy(encoder.encode_users(train_users)),
        torch.from_numpy(genres),
        torch.from_numpy(decades),
    )
    defaults = HYBRID_DEFAULTS.fit
    kwargs.setdefault("fit_defaults", defaults)  # its wd too, unless given (see Learner)
    return HybridLearner(data, model, encoder, **kwargs)
