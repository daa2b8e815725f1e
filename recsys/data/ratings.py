"""Read ratings from the database into contiguous indices and tensors.

Users and items get indices 0..n-1 in the order of their database ids, so the
same database gives the same indices every time; the external ids are kept
beside the tensors for serving (index -> id) and lookup (id -> index).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sqlalchemy import Connection, Engine, Table, literal, select, true, tuple_

from recsys.data.ids import IdMap
from recsys.db.engine import driver_connection
from recsys.db.tables import deletions, items, ratings, users
from recsys.db.write_log import write_number

# How many written ratings a worker reads per query when it follows the write log.
FOLLOW_PAGE_ROWS = 100_000
CHANGE_COLUMNS = ["user_id", "item_id", "rating", "seq"]
DELETION_COLUMNS = ["seq", "kind", "user_id", "item_id"]


@dataclass
class RatingsTable:
    """All ratings as index tensors, with the id maps and optional metadata frames."""

    users: torch.Tensor  # (n_ratings,) int64 user indices
    items: torch.Tensor  # (n_ratings,) int64 item indices
    ratings: torch.Tensor  # (n_ratings,) float32
    timestamps: torch.Tensor  # (n_ratings,) int64 Unix seconds
    user_map: IdMap
    item_map: IdMap
    user_metadata: pd.DataFrame | None = None  # one row per user index
    item_metadata: pd.DataFrame | None = None  # one row per item index

    def __len__(self) -> int:
        return len(self.ratings)

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    def take(self, rows: np.ndarray) -> RatingsTable:
        """The ratings at ``rows``, with the same id maps and metadata."""
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        return RatingsTable(
            self.users[index],
            self.items[index],
            self.ratings[index],
            self.timestamps[index],
            self.user_map,
            self.item_map,
            self.user_metadata,
            self.item_metadata,
        )

    def frame(self) -> pd.DataFrame:
        """The ratings in external ids: user_id, item_id, rating, timestamp."""
        return pd.DataFrame(
            {
                "user_id": self.user_map.ids[self.users.numpy()],
                "item_id": self.item_map.ids[self.items.numpy()],
                "rating": self.ratings.numpy(),
                "timestamp": self.timestamps.numpy(),
            }
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        user_col: str = "user_id",
        item_col: str = "item_id",
        rating_col: str = "rating",
        timestamp_col: str = "timestamp",
    ) -> RatingsTable:
        """The same table from a frame (no metadata): what the benchmarks hand to the
        training job's ``fit_select_refit`` without going through a database."""
        user_index, user_ids = pd.factorize(frame[user_col], sort=True)
        item_index, item_ids = pd.factorize(frame[item_col], sort=True)
        return cls(
            users=torch.from_numpy(user_index.astype(np.int64)),
            items=torch.from_numpy(item_index.astype(np.int64)),
            ratings=torch.from_numpy(frame[rating_col].to_numpy(np.float32, copy=True)),
            timestamps=torch.from_numpy(frame[timestamp_col].to_numpy(np.int64, copy=True)),
            user_map=IdMap("user", np.asarray(user_ids, dtype=object)),
            item_map=IdMap("item", np.asarray(item_ids, dtype=object)),
        )


def read_ratings(
    engine: Engine, *, with_metadata: bool = False, chunk_rows: int = 100_000
) -> RatingsTable:
    """Stream every rating out of the database in chunks into a :class:`RatingsTable`."""
    parts = []
    with engine.connect() as connection:
        # The driver's own cursor, not SQLAlchemy rows: this loop is the whole cost
        # of building a data set, and tuples -> one float64 array is the fast path.
        # PostgreSQL streams through a server-side (named) cursor; SQLite steps lazily.
        driver = driver_connection(connection)
        is_postgres = connection.dialect.name == "postgresql"
        cursor = driver.cursor(name="recsys_read_ratings") if is_postgres else driver.cursor()
        try:
            cursor.execute("SELECT user_id, item_id, value, timestamp FROM ratings")
            while rows := cursor.fetchmany(chunk_rows):
                parts.append(np.array(rows, dtype=np.float64))  # (rows, 4); ids < 2**53
        finally:
            cursor.close()
        user_rows = _entity_rows(connection, users, with_metadata)
        item_rows = _entity_rows(connection, items, with_metadata)
    columns = np.concatenate(parts) if parts else np.empty((0, 4))
    # Sorting makes the row order independent of how the rows were stored.
    order = np.lexsort((columns[:, 1], columns[:, 0]))
    columns = columns[order]

    user_db_ids, user_index = np.unique(columns[:, 0].astype(np.int64), return_inverse=True)
    item_db_ids, item_index = np.unique(columns[:, 1].astype(np.int64), return_inverse=True)
    user_rows = user_rows.loc[user_db_ids]
    item_rows = item_rows.loc[item_db_ids]
    return RatingsTable(
        users=torch.from_numpy(user_index.astype(np.int64)),
        items=torch.from_numpy(item_index.astype(np.int64)),
        ratings=torch.from_numpy(columns[:, 2].astype(np.float32)),
        timestamps=torch.from_numpy(columns[:, 3].astype(np.int64)),
        user_map=IdMap("user", user_rows["external_id"].to_numpy(dtype=object)),
        item_map=IdMap("item", item_rows["external_id"].to_numpy(dtype=object)),
        user_metadata=user_rows.reset_index(drop=True) if with_metadata else None,
        item_metadata=item_rows.reset_index(drop=True) if with_metadata else None,
    )


def _entity_rows(connection: Connection, table: Table, with_metadata: bool) -> pd.DataFrame:
    columns = (
        [c for c in table.c if c.name != "created_at"]
        if with_metadata
        else [table.c.id, table.c.external_id]
    )
    rows = connection.execute(select(*columns)).all()
    return pd.DataFrame(rows, columns=[c.name for c in columns]).set_index("id")


def latest_write(engine: Engine) -> int:
    """The number of the latest write to the ratings, deletions included (0 before any).
    Writes take their numbers in commit order, so every write up to it has committed."""
    with engine.connect() as connection:
        return write_number(connection)


def read_deletions(
    engine: Engine, after: int, through: int, kinds: Sequence[str] = ("rating", "item", "user")
) -> pd.DataFrame:
    """The tombstones of writes ``after`` < seq <= ``through`` (see recsys.db.deletion),
    oldest first: seq, kind, user_id, item_id."""
    query = (
        select(deletions.c.seq, deletions.c.kind, deletions.c.user_id, deletions.c.item_id)
        .where(deletions.c.seq > after, deletions.c.seq <= through, deletions.c.kind.in_(kinds))
        .order_by(deletions.c.seq, deletions.c.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=DELETION_COLUMNS)


def read_rating_changes(
    engine: Engine, after: int, through: int | None = None, page_rows: int = FOLLOW_PAGE_ROWS
) -> Iterator[pd.DataFrame]:
    """Ratings written after write number ``after`` (up to ``through`` when given),
    oldest first, in pages of at most ``page_rows``: user_id, item_id, rating, seq.

    Every rating of one write carries the same seq, and one write may hold millions:
    the pages go on from the last (seq, user, item) read, never from the last seq
    alone, which would skip the rest of a write cut by a page. The last page is the
    first shorter than ``page_rows``; a write committed meanwhile is read to its end.
    """
    query = (
        select(
            users.c.external_id.label("user_id"),
            items.c.external_id.label("item_id"),
            ratings.c.value.label("rating"),
            ratings.c.seq,
            ratings.c.user_id.label("user_key"),
            ratings.c.item_id.label("item_key"),
        )
        .select_from(
            ratings.join(users, users.c.id == ratings.c.user_id).join(
                items, items.c.id == ratings.c.item_id
            )
        )
        .order_by(ratings.c.seq, ratings.c.user_id, ratings.c.item_id)  # ix_ratings_seq
        .limit(page_rows)
    )
    bound = ratings.c.seq <= through if through is not None else true()
    where = ratings.c.seq > after
    while True:
        with engine.connect() as connection:
            rows = connection.execute(query.where(where, bound)).all()
        if rows:
            yield pd.DataFrame([row[:4] for row in rows], columns=CHANGE_COLUMNS)
        if len(rows) < page_rows:
            return
        seq, user_key, item_key = rows[-1][3:]
        where = tuple_(ratings.c.seq, ratings.c.user_id, ratings.c.item_id) > tuple_(
            literal(seq), literal(user_key), literal(item_key)
        )
