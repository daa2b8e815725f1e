"""Rating predictions as served: a model that reads metadata scores the users and items
it never saw from what the database holds for them."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from recsys.collab.rating_prediction import RatingPredictions, Unknown
from recsys.collab.recommender import Recommender
from recsys.data.catalog import read_item_metadata, read_user_profiles


def predict_ratings(
    recommender: Recommender, engine: Engine, pairs: pd.DataFrame, unknown: Unknown = "baseline"
) -> RatingPredictions:
    """Predicted ratings for (``user_id``, ``item_id``) pairs; see
    ``Recommender.predict`` for ``unknown``. The database is read only for the ids
    a metadata-reading model never saw."""
    if not recommender.reads_metadata:
        return recommender.predict(pairs, unknown=unknown)
    new_users = [u for u in pairs["user_id"].unique() if u not in recommender.user_map]
    new_items = [i for i in pairs["item_id"].unique() if i not in recommender.item_map]
    users = read_user_profiles(engine, new_users) if new_users else None
    items = read_item_metadata(engine, new_items) if new_items else None
    return recommender.predict(pairs, users=users, items=items, unknown=unknown)
