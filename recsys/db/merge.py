"""Merging staged rows into the real tables, inside the ingestion's transaction.

Users and items are upserts. Ratings are an UPDATE of the pairs that changed and an
INSERT of the new ones; a big load on SQLite drops and rebuilds the secondary
indexes around them, and a big load on PostgreSQL builds the merged table beside the
old one and swaps it in (:func:`merge_ratings`).
"""

from __future__ import annotations

import time

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    MetaData,
    Table,
    case,
    column,
    func,
    insert,
    literal,
    or_,
    select,
    table,
    text,
    true,
    update,
)
from sqlalchemy.exc import OperationalError

from recsys.db.engine import LOCK_NOT_AVAILABLE, WriterWaitExceeded, dialect_insert
from recsys.db.staging import USER_FIELDS
from recsys.db.tables import items, ratings, users

BULK_LOAD_ROWS = 50_000  # from here a load may rebuild the ratings indexes (see the merge)
RATING_COLUMNS = ["user_id", "item_id", "value", "timestamp", "seq"]
NEXT = "_next"  # the suffix of the table (and its constraints) a big PostgreSQL load builds
SWAP_LOCK_TRY_MS = 200  # each try for the swap's lock: how long readers may queue behind it
SWAP_WAIT_SECONDS = 600.0  # how long the swap keeps trying before the load gives up


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
    for stored, staged, fields in (
        (users, staging.tables["staging_users"], (*USER_FIELDS, "attributes")),
        (items, staging.tables["staging_items"], ("title", "release_date", "genres", "attributes")),
    ):
        if not given[stored.name]:
            continue
        statement = dialect_insert(connection, stored).from_select(
            ["external_id", *fields],
            select(staged.c.external_id, *(staged.c[f] for f in fields))
            .where(true())
            .order_by(staged.c.row),
        )
        merged = {f: func.coalesce(statement.excluded[f], stored.c[f]) for f in fields}
        statement = statement.on_conflict_do_update(
            index_elements=[stored.c.external_id],
            set_=merged,
            where=or_(*(merged[f].is_distinct_from(stored.c[f]) for f in fields)),
        )
        count_before = _count(connection, stored)
        changed = connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount
        new = _count(connection, stored) - count_before
        created[stored.name] += new
        updated[stored.name] = changed - new
    return updated


def merge_ratings(connection: Connection, staged: Table, seq: int) -> tuple[int, int]:
    """Update the stored ratings whose value or time changed, insert the new ones;
    the counts (inserted, updated).

    Rating writers take turns (see recsys.db.write_log), so no pair can appear
    between the statements. A big load (at least ``BULK_LOAD_ROWS`` and a third of the
    table) builds its indexes once instead of making millions of random index inserts:
    SQLite drops and rebuilds the secondary indexes around the merge (readers keep
    their snapshot, WAL); PostgreSQL builds the merged table beside the old one and
    swaps it in (:func:`_swap_in_merged`), since dropping an index there would lock
    out readers until the commit.
    """
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text(f"ANALYZE {staged.name}"))  # for the join's plan
    n_staged = _count(connection, staged)
    if n_staged >= BULK_LOAD_ROWS:
        n_stored = _count(connection, ratings)
        if 3 * n_staged >= n_stored:
            if postgres:
                return _swap_in_merged(connection, staged, seq, n_stored)
            for index in ratings.indexes:
                index.drop(connection)
            counts = _merge_in_place(connection, staged, seq)
            for index in ratings.indexes:
                index.create(connection)
            return counts
    return _merge_in_place(connection, staged, seq)


def _merge_in_place(connection: Connection, staged: Table, seq: int) -> tuple[int, int]:
    changed = connection.execute(
        update(ratings)
        .where(
            ratings.c.user_id == staged.c.user_id,
            ratings.c.item_id == staged.c.item_id,
            _differs(staged),
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
    if connection.dialect.name == "postgresql":
        # An anti-join and a plain insert: two to three times faster on PostgreSQL than
        # ON CONFLICT's per-row speculative insertion (SQLite is faster the other way).
        stored = (
            select(ratings.c.user_id)
            .where(ratings.c.user_id == staged.c.user_id, ratings.c.item_id == staged.c.item_id)
            .exists()
        )
        statement = ratings.insert().from_select(RATING_COLUMNS, new_rows.where(~stored))
    else:
        statement = (
            dialect_insert(connection, ratings)
            .from_select(RATING_COLUMNS, new_rows.where(true()))
            .on_conflict_do_nothing(index_elements=[ratings.c.user_id, ratings.c.item_id])
        )
    inserted = connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount
    return inserted, changed


def _differs(staged: Table) -> ColumnElement[bool]:
    """Whether a staged rating changes the stored one of its pair."""
    return (ratings.c.value != staged.c.value) | (ratings.c.timestamp != staged.c.timestamp)


def _swap_in_merged(
    connection: Connection, staged: Table, seq: int, n_stored: int
) -> tuple[int, int]:
    """PostgreSQL's big load: write the merged ratings into a new table, build its keys
    and indexes once, and swap it in for the old one.

    Until the swap, readers read the old table without waiting. The swap (drop the old
    table, rename the new one and its constraints) is catalog work of milliseconds; its
    exclusive lock is taken in short tries (:func:`_lock_for_swap`), so readers never
    queue behind it for long, and it is held only from there to the commit.
    Unchanged ratings keep their write number, so followers read only what changed.
    """
    target = f"{ratings.name}{NEXT}"
    connection.execute(text(f"CREATE TABLE {target} (LIKE {ratings.name} INCLUDING DEFAULTS)"))
    merged = select(
        func.coalesce(staged.c.user_id, ratings.c.user_id),
        func.coalesce(staged.c.item_id, ratings.c.item_id),
        func.coalesce(staged.c.value, ratings.c.value),
        func.coalesce(staged.c.timestamp, ratings.c.timestamp),
        case(
            (staged.c.user_id.is_(None), ratings.c.seq),
            (ratings.c.user_id.is_(None) | _differs(staged), literal(seq, BigInteger)),
            else_=ratings.c.seq,
        ),
    ).select_from(
        ratings.join(
            staged,
            (ratings.c.user_id == staged.c.user_id) & (ratings.c.item_id == staged.c.item_id),
            full=True,
        )
    )
    built = table(target, *(column(name) for name in RATING_COLUMNS))
    n_merged = connection.execute(
        insert(built).from_select(RATING_COLUMNS, merged).execution_options(preserve_rowcount=True)
    ).rowcount
    renames = _build_keys_and_indexes(connection, target)
    written = connection.execute(
        select(func.count()).select_from(built).where(built.c.seq == seq)
    ).scalar_one()
    _lock_for_swap(connection)
    connection.execute(text(f"DROP TABLE {ratings.name}"))
    connection.execute(text(f"ALTER TABLE {target} RENAME TO {ratings.name}"))
    connection.execute(text(f"ANALYZE {ratings.name}"))
    for statement in renames:
        connection.execute(text(statement))
    inserted = n_merged - n_stored
    return inserted, written - inserted


def _build_keys_and_indexes(connection: Connection, target: str) -> list[str]:
    """Give ``target`` the ratings table's primary key, indexes and foreign keys, named
    with ``NEXT`` appended; the statements that rename them once it is the ratings table."""
    renames = []
    key = ratings.primary_key
    connection.execute(
        text(
            f"ALTER TABLE {target} ADD CONSTRAINT {key.name}{NEXT} "
            f"PRIMARY KEY ({', '.join(c.name for c in key.columns)})"
        )
    )
    renames.append(f"ALTER TABLE {ratings.name} RENAME CONSTRAINT {key.name}{NEXT} TO {key.name}")
    for index in ratings.indexes:
        connection.execute(
            text(
                f"CREATE INDEX {index.name}{NEXT} ON {target} "
                f"({', '.join(c.name for c in index.columns)})"
            )
        )
        renames.append(f"ALTER INDEX {index.name}{NEXT} RENAME TO {index.name}")
    for foreign in ratings.foreign_key_constraints:
        referred = foreign.elements[0].column.table.name
        connection.execute(
            text(
                f"ALTER TABLE {target} ADD CONSTRAINT {foreign.name}{NEXT} "
                f"FOREIGN KEY ({', '.join(c.name for c in foreign.columns)}) "
                f"REFERENCES {referred} ({', '.join(e.column.name for e in foreign.elements)}) "
                f"ON DELETE {foreign.ondelete}"
            )
        )
        renames.append(
            f"ALTER TABLE {ratings.name} RENAME CONSTRAINT {foreign.name}{NEXT} TO {foreign.name}"
        )
    return renames


def _lock_for_swap(connection: Connection) -> None:
    """Take the exclusive locks the swap needs in tries of ``SWAP_LOCK_TRY_MS``: the
    ratings table's, and the users' and items' (dropping the old table drops its foreign
    keys' triggers on them).

    A waiting exclusive request queues every later reader behind it, so one long reader
    (a training job's scan) would stall the service for as long as it reads; a try that
    gives up lets the queue drain, and the next try comes a moment later.
    """
    deadline = time.monotonic() + SWAP_WAIT_SECONDS
    while True:
        savepoint = connection.begin_nested()
        try:
            connection.execute(text(f"SET LOCAL lock_timeout = {SWAP_LOCK_TRY_MS}"))
            connection.execute(
                text(
                    f"LOCK TABLE {ratings.name}, {users.name}, {items.name} "
                    "IN ACCESS EXCLUSIVE MODE"
                )
            )
        except OperationalError as error:
            savepoint.rollback()
            if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            if time.monotonic() > deadline:
                raise WriterWaitExceeded(
                    f"readers held the ratings table for over {SWAP_WAIT_SECONDS:.0f} s; "
                    "the load was rolled back"
                ) from error
            time.sleep(SWAP_LOCK_TRY_MS / 1000)
        else:
            savepoint.commit()
            return
