"""What the interpretation and the service show beside model output: titles, counts, means."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from recsys.db.tables import items, ratings, users


def read_item_catalog(engine: Engine) -> pd.DataFrame:
    """Every item with its title, genres, number of ratings and mean rating (0 and NaN if
    none), and whether it is hidden."""
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
            items.c.hidden,
        )
        .select_from(items.outerjoin(counts, counts.c.item_id == items.c.id))
        .order_by(items.c.id)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(
            connection.execute(query).all(),
            columns=["item_id", "title", "genres", "n_ratings", "mean_rating", "hidden"],
        )
    frame["n_ratings"] = frame["n_ratings"].fillna(0).astype("int64")
    frame["mean_rating"] = frame["mean_rating"].astype("float64")
    return frame


def read_items(engine: Engine) -> pd.DataFrame:
    """Every item's id, title, genres and whether it is hidden, in database order: the
    catalog without its rating counts (which a serving snapshot holds)."""
    query = select(
        items.c.external_id.label("item_id"), items.c.title, items.c.genres, items.c.hidden
    ).order_by(items.c.id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["item_id", "title", "genres", "hidden"])


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


def read_item(engine: Engine, item_id: str) -> dict | None:
    """One item as stored (title, genres, release_date as ISO text, hidden); None when
    the database has no such item."""
    query = select(items.c.title, items.c.genres, items.c.release_date, items.c.hidden).where(
        items.c.external_id == item_id
    )
    with engine.connect() as connection:
        row = connection.execute(query).one_or_none()
    if row is None:
        return None
    released = row.release_date.isoformat() if row.release_date is not None else None
    return {
        "title": row.title,
        "genres": list(row.genres or []),
        "release_date": released,
        "hidden": bool(row.hidden),
    }


class UnknownGenreError(ValueError):
    """A genre filter that no item has."""


class ItemCatalog:
    """Every item's title, genres and rating counts, indexed for requests: genre
    masks, titles by id, and the popularity list (most rated first) that answers
    users nothing is known about.

    Built once per model load (recsys.serving.loading.item_catalog); nothing here
    touches the database afterwards.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        frame = frame.assign(
            item_id=frame["item_id"].astype(str),
            genres=[list(g) if isinstance(g, list | tuple) else [] for g in frame["genres"]],
        )
        self.frame = frame.set_index("item_id", drop=False)
        self.genre_names: dict[str, str] = {}  # lower case -> as spelled in the data
        for genres in frame["genres"]:
            for genre in genres:
                self.genre_names.setdefault(genre.lower(), genre)
        order = frame.sort_values(["n_ratings", "mean_rating"], ascending=False, kind="stable")
        # Most rated first (ties: higher mean rating): the popular list's order, which
        # recsys.serving.answers ranks through the one top_k.
        self.by_popularity = order.reset_index(drop=True)
        self._popular_index = pd.Index(self.by_popularity["item_id"])
        self._popular_genres = {
            key: np.array([name in g for g in self.by_popularity["genres"]], dtype=bool)
            for key, name in self.genre_names.items()
        }
        self.deleted: frozenset[str] = frozenset()  # see forget
        hidden = frame["item_id"][frame["hidden"]] if "hidden" in frame else []
        self.hide(hidden)

    def hide(self, item_ids: Iterable[object]) -> None:
        """These items, and no others, are hidden: never listed as popular."""
        self.hidden = frozenset(str(i) for i in item_ids)
        self._popular_visible = ~self._popular_index.isin(list(self.unlisted))

    def forget(self, item_ids: Iterable[object]) -> None:
        """Deleted items: never listed, and no longer in the catalog. The rating counts
        of the others stay as of loading (a rating's deletion, like its addition, is
        counted at the next load or `recsys models snapshot`)."""
        self.deleted = self.deleted | {str(i) for i in item_ids}
        self._popular_visible = ~self._popular_index.isin(list(self.unlisted))

    @property
    def unlisted(self) -> frozenset[str]:
        """The items no list shows: hidden or deleted."""
        return self.hidden | self.deleted

    def popular_mask(self, genres: Sequence[str] = ()) -> np.ndarray:
        """Over ``by_popularity``: the items that may be listed (not hidden, of any of
        ``genres`` when given)."""
        keep = self._popular_visible.copy()
        if genres:
            keep &= np.logical_or.reduce(
                [self._popular_genres[self.genre(genre).lower()] for genre in genres]
            )
        return keep

    def popular_positions(self, item_ids: Iterable[object]) -> np.ndarray:
        """Where ``item_ids`` stand in ``by_popularity`` (ids not in the catalog skipped)."""
        positions = self._popular_index.get_indexer([str(i) for i in item_ids])
        return positions[positions >= 0].astype(np.int64)

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self.frame.index and str(item_id) not in self.deleted

    def genre(self, name: str) -> str:
        """The genre as spelled in the data (matched case-insensitively); UnknownGenreError
        lists the known ones."""
        key = name.lower()
        if key not in self.genre_names:
            known = ", ".join(sorted(self.genre_names.values()))
            raise UnknownGenreError(f"unknown genre {name!r}; known genres: {known}")
        return self.genre_names[key]

    def genre_mask(
        self, names: Sequence[str], item_ids: Sequence[object] | np.ndarray
    ) -> np.ndarray:
        """Which of ``item_ids`` (in order) have any of the genres ``names``."""
        wanted = {self.genre(name) for name in names}
        genres = self.frame["genres"].reindex([str(i) for i in item_ids])
        return np.array([isinstance(g, list) and bool(wanted & set(g)) for g in genres])

    def aligned(self, item_ids: Sequence[object] | np.ndarray) -> pd.DataFrame:
        """One row per id in ``item_ids`` (missing rows: no title, no genres, no ratings)."""
        rows = self.frame.reindex([str(i) for i in item_ids]).reset_index(drop=True)
        rows["item_id"] = [str(i) for i in item_ids]
        rows["genres"] = [g if isinstance(g, list) else [] for g in rows["genres"]]
        rows["n_ratings"] = rows["n_ratings"].fillna(0).astype("int64")
        return rows

    def title(self, item_id: object) -> str | None:
        value = self.frame["title"].get(str(item_id))
        return value if isinstance(value, str) else None
