"""Deleting: a rating taken back, an item deleted, a user erased — all or nothing, each a
numbered write of the ratings' log.

Every deletion takes the next write number (as ingestion does, so deletions and new
ratings land in one order) and leaves a tombstone in ``deletions`` with it: serving
workers read those beside the new ratings and forget what they name within a poll
(recsys.serving.following). For the same (user, item), the later write wins: a rating
stored after its deletion is there, a deletion after a rating removes it.

- a **rating**: the row goes; deleting one that is not there changes nothing;
- an **item**: the item and every rating of it go. To stop recommending an item but
  keep learning from its ratings, hide it instead (recsys.db.item_visibility);
- a **user** (erasure): their ratings and profile go, and so do the tombstones of
  ratings they took back, which would say what they had rated. Only the tombstone of
  the erasure keeps their id: what tells every worker, and every model trained before
  it, to treat them as unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from rich.progress import Progress
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    and_,
    delete,
    insert,
    literal,
    select,
    tuple_,
)

from recsys.db import validate
from recsys.db.engine import write_transaction
from recsys.db.sources import Chunk, TableSource
from recsys.db.staging import ColumnNames, stage
from recsys.db.tables import deletions, items, ratings, users
from recsys.db.write_log import next_write_number


@dataclass(frozen=True)
class DeletionReport:
    """What one deletion changed."""

    pairs_read: int = 0  # (user, item) pairs asked for, repeats included
    ratings_deleted: int = 0
    users_erased: int = 0
    items_deleted: int = 0


def _staging() -> Table:
    return Table(
        "staging_deletions",
        MetaData(),
        Column("row", BigInteger),
        Column("user_external_id", String(255)),
        Column("item_external_id", String(255)),
        prefixes=["TEMPORARY"],
    )


def delete_ratings(
    engine: Engine,
    source: TableSource,
    columns: ColumnNames = ColumnNames(),
    progress: Progress | None = None,
) -> DeletionReport:
    """Delete the ratings of the (user, item) pairs in ``source``, validated like
    ingestion's ids (IngestError names the file and row; nothing is deleted then). Pairs
    with no rating, and repeats, change nothing."""
    validate.require_columns(source.name, source.columns, [columns.user, columns.item])
    staged = _staging()

    def pair_rows(chunk: Chunk) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "row": range(chunk.first_row, chunk.first_row + len(chunk.frame)),
                "user_external_id": validate.ids(chunk, source.name, columns.user).to_numpy(),
                "item_external_id": validate.ids(chunk, source.name, columns.item).to_numpy(),
            }
        )

    with write_transaction(engine) as connection:
        staged.create(connection)
        seq = next_write_number(connection)
        n_read = stage(connection, staged, source, progress, pair_rows)
        pairs = (
            select(users.c.id, items.c.id, users.c.external_id, items.c.external_id)
            .select_from(
                staged.join(users, users.c.external_id == staged.c.user_external_id)
                .join(items, items.c.external_id == staged.c.item_external_id)
                .join(
                    ratings, and_(ratings.c.user_id == users.c.id, ratings.c.item_id == items.c.id)
                )
            )
            .distinct()
            .subquery()
        )
        connection.execute(
            insert(deletions).from_select(
                ["seq", "kind", "user_id", "item_id"],
                select(literal(seq), literal("rating"), pairs.c[2], pairs.c[3]),
            )
        )
        deleted = connection.execute(
            delete(ratings).where(
                tuple_(ratings.c.user_id, ratings.c.item_id).in_(select(pairs.c[0], pairs.c[1]))
            )
        ).rowcount
        staged.drop(connection)
    return DeletionReport(pairs_read=n_read, ratings_deleted=deleted)


def delete_item(engine: Engine, item_id: str) -> DeletionReport | None:
    """Delete the item and every rating of it; None when the database has no such item."""
    with write_transaction(engine) as connection:
        seq = next_write_number(connection)
        key = _internal_id(connection, items, item_id)
        if key is None:
            return None
        n_ratings = connection.execute(delete(ratings).where(ratings.c.item_id == key)).rowcount
        connection.execute(delete(items).where(items.c.id == key))
        connection.execute(insert(deletions).values(seq=seq, kind="item", item_id=item_id))
    return DeletionReport(ratings_deleted=n_ratings, items_deleted=1)


def erase_users(engine: Engine, user_ids: Sequence[str]) -> DeletionReport:
    """Erase the users, all in one write: their ratings, their profiles, and the
    tombstones of the ratings they took back. Ids the database does not hold are skipped
    (``users_erased`` counts the others)."""
    erased = n_ratings = 0
    with write_transaction(engine) as connection:
        seq = next_write_number(connection)
        for user_id in dict.fromkeys(user_ids):  # each once, in the order given
            key = _internal_id(connection, users, user_id)
            if key is None:
                continue
            n_ratings += connection.execute(
                delete(ratings).where(ratings.c.user_id == key)
            ).rowcount
            connection.execute(delete(users).where(users.c.id == key))
            connection.execute(
                delete(deletions).where(
                    deletions.c.kind == "rating", deletions.c.user_id == user_id
                )
            )
            connection.execute(insert(deletions).values(seq=seq, kind="user", user_id=user_id))
            erased += 1
    return DeletionReport(ratings_deleted=n_ratings, users_erased=erased)


def read_user_ids(source: TableSource, column: str = "user_id") -> list[str]:
    """The user ids of a file (one column of them), validated like ingestion's: the
    input of a bulk erasure. IngestError names the file and row of a bad one."""
    validate.require_columns(source.name, source.columns, [column])
    return [i for chunk in source.chunks for i in validate.ids(chunk, source.name, column)]


def _internal_id(connection: Connection, table: Table, external_id: str) -> int | None:
    return connection.execute(
        select(table.c.id).where(table.c.external_id == external_id)
    ).scalar_one_or_none()
