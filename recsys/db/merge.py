"""Merging staged rows into the real tables, inside the ingestion's transaction.

Users and items are upserts. Ratings are an UPDATE of the pairs that changed and an
INSERT of the new ones; a big load on SQLite drops and rebuilds the secondary
indexes around them, and a big load on PostgreSQL builds the merged table beside the
old one and swaps it in (:func:`merge_ratings`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Connection,
    ForeignKeyConstraint,
    Index,
    MetaData,
    Table,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.schema import AddConstraint, DropConstraint

from recsys.db.engine import dialect_insert
from recsys.db.staging import USER_FIELDS
from recsys.db.tables import items, ratings, users

RATING_WRITES_LOCK = 0x7265637379  # PostgreSQL advisory lock key: "recsy"
BULK_LOAD_ROWS = 50_000  # from here a load may rebuild the ratings indexes (see the merge)


def next_write_number(connection: Connection) -> int:
    """The number this write stamps on the ratings it changes: one more than any so far.

    Numbers must grow in commit order, or a worker that has seen number n could miss a
    later-committing n - 1. SQLite writers are already one at a time (BEGIN IMMEDIATE);
    on PostgreSQL a transaction-scoped advisory lock makes them take turns from here to
    their commit.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(RATING_WRITES_LOCK)))
    latest = connection.execute(select(func.max(ratings.c.seq))).scalar_one()
    return int(latest or 0) + 1


def _count(connection: Connection, table: Table) -> int:
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def merge_metadata(
    connection: Connection, staging: MetaData, given: dict[str, bool], created: dict[str, int]
) -> dict[str, int]:
    """Upsert the staged users and items of the ``given`` tables; how many existing ones
    changed, per table (new ones are added to ``created``).

    Given fields overwrite, blanks keep what the database had, and rows whose fields
    all match are not touched (a re-load changes nothing). "WHERE true" resolves
    SQLite's ON CONFLICT parsing ambiguity after SELECT.
    """
    updated = {"users": 0, "items": 0}
    for table, staged, fields in (
        (users, staging.tables["staging_users"], (*USER_FIELDS, "attributes")),
        (items, staging.tables["staging_items"], ("title", "release_date", "genres", "attributes")),
    ):
        if not given[table.name]:
            continue
        statement = dialect_insert(connection, table).from_select(
            ["external_id", *fields],
            select(staged.c.external_id, *(staged.c[f] for f in fields))
            .where(true())
            .order_by(staged.c.row),
        )
        merged = {f: func.coalesce(statement.excluded[f], table.c[f]) for f in fields}
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.external_id],
            set_=merged,
            where=or_(*(merged[f].is_distinct_from(table.c[f]) for f in fields)),
        )
        count_before = _count(connection, table)
        changed = connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount
        new = _count(connection, table) - count_before
        created[table.name] += new
        updated[table.name] = changed - new
    return updated


def merge_ratings(connection: Connection, staged: Table, seq: int) -> tuple[int, int]:
    """Update the stored ratings whose value or time changed, insert the new ones;
    the counts (inserted, updated).

    Rating writers take turns (see :func:`next_write_number`), so no pair can appear
    between the two statements. A big load is merged without the secondary indexes
    (and, on PostgreSQL, the foreign keys), which are rebuilt once at the end: one sort
    is several times cheaper than millions of random index inserts and per-row checks.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"ANALYZE {staged.name}"))  # for the join's plan
    rebuilt = _rebuilt_for_bulk_load(connection, staged)
    for constraint in rebuilt:
        if isinstance(constraint, Index):
            constraint.drop(connection)
        else:
            connection.execute(DropConstraint(constraint))
    changed = connection.execute(
        update(ratings)
        .where(
            ratings.c.user_id == staged.c.user_id,
            ratings.c.item_id == staged.c.item_id,
            (ratings.c.value != staged.c.value) | (ratings.c.timestamp != staged.c.timestamp),
        )
        .values(value=staged.c.value, timestamp=staged.c.timestamp, seq=seq)
        .execution_options(preserve_rowcount=True)
    ).rowcount
    new_rows = select(
        staged.c.user_id,
        staged.c.item_id,
        staged.c.value,
        staged.c.timestamp,
        literal(seq, BigInteger),
    ).order_by(staged.c.user_id, staged.c.item_id)
    names = ["user_id", "item_id", "value", "timestamp", "seq"]
    if connection.dialect.name == "postgresql":
        # An anti-join and a plain insert: two to three times faster on PostgreSQL than
        # ON CONFLICT's per-row speculative insertion (SQLite is faster the other way).
        stored = (
            select(ratings.c.user_id)
            .where(ratings.c.user_id == staged.c.user_id, ratings.c.item_id == staged.c.item_id)
            .exists()
        )
        statement = ratings.insert().from_select(names, new_rows.where(~stored))
    else:
        statement = (
            dialect_insert(connection, ratings)
            .from_select(names, new_rows.where(true()))
            .on_conflict_do_nothing(index_elements=[ratings.c.user_id, ratings.c.item_id])
        )
    inserted = connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount
    for constraint in rebuilt:
        if isinstance(constraint, Index):
            constraint.create(connection)
        else:
            connection.execute(AddConstraint(constraint))
    return inserted, changed


def _rebuilt_for_bulk_load(
    connection: Connection, staged: Table
) -> list[Index | ForeignKeyConstraint]:
    """What the merge drops and rebuilds: nothing for a small write.

    SQLite: the secondary indexes, for a load at least a third the size of the table
    (readers keep their snapshot, WAL). PostgreSQL: also the foreign keys, but only
    into an empty table, since dropping them locks out readers until the commit.
    """
    n_staged = _count(connection, staged)
    if n_staged < BULK_LOAD_ROWS:
        return []
    n_stored = _count(connection, ratings)
    if connection.dialect.name == "sqlite" and 3 * n_staged >= n_stored:
        return list(ratings.indexes)
    if connection.dialect.name == "postgresql" and n_stored == 0:
        return [*ratings.indexes, *ratings.foreign_key_constraints]
    return []
