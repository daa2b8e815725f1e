"""What the interpretation and the service show beside model output: titles, counts, means."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, func, select

from recsys.db.tables import items, ratings, users


def read_item_catalog(engine: Engine) -> pd.DataFrame:
    """Every item with its title, genres, number of ratings and mean rating (0 and NaN if none)."""
    counts = (
        select(
            ratings.c.item_id,
            func.count().label("n_ratings"),
            func.avg(ratings.c.value).label("mean_rating"),
        )
        .group_by(ratings.c.item_id)
        .subquery()
    )
    query = (
        select(
            items.c.external_id.label("item_id"),
            items.c.title,
            items.c.genres,
            counts.c.n_ratings,
            counts.c.mean_rating,
        )
        .select_from(items.outerjoin(counts, counts.c.item_id == items.c.id))
        .order_by(items.c.id)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(
            connection.execute(query).all(),
            columns=["item_id", "title", "genres", "n_ratings", "mean_rating"],
        )
    frame["n_ratings"] = frame["n_ratings"].fillna(0).astype("int64")
    frame["mean_rating"] = frame["mean_rating"].astype("float64")
    return frame


def read_user_stats(engine: Engine) -> pd.DataFrame:
    """Every user with their number of ratings and mean rating."""
    query = (
        select(
            users.c.external_id.label("user_id"),
            func.count(ratings.c.value).label("n_ratings"),
            func.avg(ratings.c.value).label("mean_rating"),
        )
        .select_from(users.outerjoin(ratings, ratings.c.user_id == users.c.id))
        .group_by(users.c.id, users.c.external_id)
        .order_by(users.c.id)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(
            connection.execute(query).all(), columns=["user_id", "n_ratings", "mean_rating"]
        )
    frame["mean_rating"] = frame["mean_rating"].astype("float64")
    return frame


def read_user_ratings(engine: Engine, user_id: str) -> pd.DataFrame:
    """One user's ratings: item_id, rating, timestamp (empty for an unknown user)."""
    query = (
        select(
            items.c.external_id.label("item_id"),
            ratings.c.value.label("rating"),
            ratings.c.timestamp,
        )
        .select_from(
            ratings.join(users, users.c.id == ratings.c.user_id).join(
                items, items.c.id == ratings.c.item_id
            )
        )
        .where(users.c.external_id == str(user_id))
        .order_by(ratings.c.timestamp)
    )
    with engine.connect() as connection:
        return pd.DataFrame(
            connection.execute(query).all(), columns=["item_id", "rating", "timestamp"]
        )


def read_user_profiles(engine: Engine, user_ids: list[str]) -> pd.DataFrame:
    """Metadata of the given users that exist: user_id, age, gender, occupation."""
    query = select(
        users.c.external_id.label("user_id"), users.c.age, users.c.gender, users.c.occupation
    ).where(users.c.external_id.in_([str(u) for u in user_ids]))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["user_id", "age", "gender", "occupation"])


def read_item_metadata(engine: Engine, item_ids: list[str]) -> pd.DataFrame:
    """Metadata of the given items that exist: item_id, genres, release_date."""
    query = select(
        items.c.external_id.label("item_id"), items.c.genres, items.c.release_date
    ).where(items.c.external_id.in_([str(i) for i in item_ids]))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["item_id", "genres", "release_date"])
