"""Load ratings and user/item metadata into the database, all or nothing.

Each input is read in chunks and validated into a temporary staging table inside
one transaction; only when every file is clean are the rows merged into the real
tables (upserts keyed by external id and by (user, item)). A bad row anywhere
rolls the whole transaction back, so the database is left exactly as it was.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import Progress
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Engine,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import AddConstraint, DropConstraint
from sqlalchemy.types import JSON

from recsys.db import validate
from recsys.db.engine import write_transaction
from recsys.db.sources import Chunk, IngestError, TableSource
from recsys.db.tables import Json, items, ratings, users

USER_FIELDS = ("age", "gender", "occupation", "zip_code")
RATING_WRITES_LOCK = 0x7265637379  # PostgreSQL advisory lock key: "recsy"
BULK_LOAD_ROWS = 50_000  # from here a load may rebuild the ratings indexes (see the merge)


@dataclass(frozen=True)
class ColumnNames:
    """Where to find each field in the input files."""

    user: str = "user_id"
    item: str = "item_id"
    rating: str = "rating"
    timestamp: str = "timestamp"
    title: str = "title"
    genres: str = "genres"
    release_date: str = "release_date"


@dataclass(frozen=True)
class IngestReport:
    """What one ingestion changed."""

    ratings_read: int = 0
    ratings_inserted: int = 0
    ratings_updated: int = 0
    users_created: int = 0
    items_created: int = 0
    users_updated: int = 0
    items_updated: int = 0


def ingest(
    engine: Engine,
    ratings_source: TableSource | None = None,
    *,
    users_source: TableSource | None = None,
    items_source: TableSource | None = None,
    columns: ColumnNames = ColumnNames(),
    rating_range: tuple[float, float] = (0.5, 5.0),
    progress: Progress | None = None,
) -> IngestReport:
    """Validate and load the given tables in one transaction; raise IngestError on bad input.

    Ratings for unknown users or items create them. Re-ingesting a file updates
    values and timestamps that changed and leaves everything else untouched.
    """
    validate.check_rating_range(*rating_range)
    for source, required in (
        (users_source, [columns.user]),
        (items_source, [columns.item]),
        (ratings_source, [columns.user, columns.item, columns.rating]),
    ):
        if source is not None:
            validate.require_columns(source.name, source.columns, required)
    staging = _staging_tables()
    ingested_at = int(time.time())
    with write_transaction(engine) as connection:
        staging.create_all(connection)
        # New users and items, counted where they are made: counting whole tables
        # would cost every one-rating API write a scan of users and items.
        created = {"users": 0, "items": 0}
        if users_source is not None:
            _stage(
                connection,
                staging.tables["staging_users"],
                users_source,
                progress,
                lambda chunk: _user_rows(chunk, users_source, columns),
            )
        if items_source is not None:
            _stage(
                connection,
                staging.tables["staging_items"],
                items_source,
                progress,
                lambda chunk: _item_rows(chunk, items_source, columns),
            )
        _reject_duplicate_ids(connection, staging, users_source, items_source)
        updated = _merge_metadata(
            connection,
            staging,
            {"users": users_source is not None, "items": items_source is not None},
            created,
        )
        ratings_read = inserted = changed = 0
        if ratings_source is not None:
            # The write number first: on PostgreSQL it takes the lock that makes
            # rating writers (and the ids they create) take turns until commit.
            seq = _next_write_number(connection)
            keys = staging.tables["staging_keys"]
            pairs: list[np.ndarray] = []  # each staged rating's (user, item), as one number

            def staged_rows(chunk: Chunk) -> pd.DataFrame:
                rows = _with_internal_ids(
                    connection,
                    keys,
                    _rating_rows(chunk, ratings_source, columns, rating_range),
                    created,
                )
                pairs.append(_pair_numbers(rows["user_id"], rows["item_id"]))
                return rows

            ratings_read = _stage(
                connection, staging.tables["staging_ratings"], ratings_source, progress, staged_rows
            )
            staged = staging.tables["staging_ratings"]
            if _has_repeated_pair(pairs):  # then the database names the rows
                _reject_duplicate_ratings(connection, staged, ratings_source)
            _keep_unchanged_times(connection, staged, ingested_at)
            inserted, changed = _merge_ratings(connection, staged, seq)
        report = IngestReport(
            ratings_read=ratings_read,
            ratings_inserted=inserted,
            ratings_updated=changed,
            users_created=created["users"],
            items_created=created["items"],
            users_updated=updated["users"],
            items_updated=updated["items"],
        )
        # Only after success: a failed transaction is rolled back, the staging tables
        # with it (DDL is transactional on both databases), and any statement in an
        # aborted PostgreSQL transaction would hide the first error behind its own.
        staging.drop_all(connection, checkfirst=True)
    return report


def _staging_tables() -> MetaData:
    staging = MetaData()
    temporary = {"prefixes": ["TEMPORARY"]}
    Table(
        "staging_users",
        staging,
        Column("row", BigInteger),
        Column("external_id", String(255)),
        Column("age", Integer),
        Column("gender", String(32)),
        Column("occupation", String(64)),
        Column("zip_code", String(32)),
        Column("attributes", Json),
        **temporary,
    )
    Table(
        "staging_items",
        staging,
        Column("row", BigInteger),
        Column("external_id", String(255)),
        Column("title", Text),
        Column("release_date", Date),
        Column("genres", Json),
        Column("attributes", Json),
        **temporary,
    )
    Table(
        "staging_ratings",
        staging,
        Column("row", BigInteger),
        Column("user_id", Integer),
        Column("item_id", Integer),
        Column("value", Float),
        Column("timestamp", BigInteger),
        **temporary,
    )
    # One chunk's distinct external ids at a time, to find (or create) their internal ids.
    Table(
        "staging_keys",
        staging,
        Column("row", BigInteger),
        Column("external_id", String(255)),
        **temporary,
    )
    return staging


def _stage(
    connection: Connection,
    table: Table,
    source: TableSource,
    progress: Progress | None,
    to_rows: Callable[[Chunk], pd.DataFrame],
) -> int:
    task = (
        progress.add_task(f"staging {source.name}", total=source.total_rows)
        if progress is not None
        else None
    )
    n_rows = 0
    for chunk in source.chunks:
        rows = to_rows(chunk)
        _bulk_insert(connection, table, rows)
        n_rows += len(rows)
        if progress is not None and task is not None:
            progress.advance(task, len(rows))
    return n_rows


def _bulk_insert(connection: Connection, table: Table, rows: pd.DataFrame) -> None:
    """Write staged rows through the driver itself: COPY on PostgreSQL, executemany on SQLite.

    Going around SQLAlchemy's per-row parameter handling is what makes a
    20M-row file practical; the rows stay inside the surrounding transaction.
    """
    if rows.empty:
        return
    names = [c.name for c in table.columns]
    values = [_python_values(rows[c.name], isinstance(c.type, JSON)) for c in table.columns]
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        # One CSV text per chunk: psycopg's per-row copy would be most of the time.
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(zip(*values, strict=True))
        with (
            driver.cursor() as cursor,
            cursor.copy(
                f"COPY {table.name} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
        ):
            copy.write(buffer.getvalue())
    else:
        placeholders = ", ".join("?" for _ in names)
        driver.executemany(
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})",
            zip(*values, strict=True),
        )


def _python_values(column: pd.Series, as_json: bool) -> list[Any]:
    """A column as Python values, None where missing; JSON columns as JSON text."""
    values = column.tolist()
    if as_json:
        return [None if v is None else json.dumps(v) for v in values]
    if column.hasnans:
        missing = column.isna().tolist()
        return [None if gone else v for v, gone in zip(values, missing, strict=True)]
    return values


def _rows_with_numbers(chunk: Chunk, fields: dict[str, pd.Series]) -> pd.DataFrame:
    frame = pd.DataFrame(fields)
    frame.insert(0, "row", range(chunk.first_row, chunk.first_row + len(frame)))
    return frame


def _attributes(chunk: Chunk, known: set[str]) -> pd.Series:
    """Columns recsys has no field for, kept per row as JSON."""
    extra = [c for c in chunk.frame.columns if c not in known]
    if not extra:
        return pd.Series([None] * len(chunk.frame), index=chunk.frame.index, dtype=object)
    records = chunk.frame[extra].astype(object).where(chunk.frame[extra].notna(), None)
    return pd.Series(records.to_dict("records"), index=chunk.frame.index, dtype=object)


def _rating_rows(
    chunk: Chunk, source: TableSource, columns: ColumnNames, rating_range: tuple[float, float]
) -> pd.DataFrame:
    low, high = rating_range
    # Without a time column a rating happened at ingestion, unless the database already
    # holds the same rating (see _keep_unchanged_times): re-loading a file changes nothing.
    timestamps = (
        validate.unix_seconds(chunk, source.name, columns.timestamp)
        if columns.timestamp in source.columns
        else pd.Series(None, index=chunk.frame.index, dtype=object)
    )
    return _rows_with_numbers(
        chunk,
        {
            "user_external_id": validate.ids(chunk, source.name, columns.user),
            "item_external_id": validate.ids(chunk, source.name, columns.item),
            "value": validate.numbers(chunk, source.name, columns.rating, low, high),
            "timestamp": timestamps,
        },
    )


def _user_rows(chunk: Chunk, source: TableSource, columns: ColumnNames) -> pd.DataFrame:
    present = set(source.columns)
    blank = pd.Series([None] * len(chunk.frame), index=chunk.frame.index, dtype=object)
    fields = {"external_id": validate.ids(chunk, source.name, columns.user)}
    fields["age"] = (
        validate.optional_integers(chunk, source.name, "age", *validate.AGE_RANGE)
        if "age" in present
        else blank
    )
    for name in ("gender", "occupation", "zip_code"):
        fields[name] = (
            validate.optional_text(chunk, source.name, name, validate.TEXT_LIMITS[name])
            if name in present
            else blank
        )
    fields["attributes"] = _attributes(chunk, {columns.user, *USER_FIELDS})
    return _rows_with_numbers(chunk, fields)


def _item_rows(chunk: Chunk, source: TableSource, columns: ColumnNames) -> pd.DataFrame:
    present = set(source.columns)
    blank = pd.Series([None] * len(chunk.frame), index=chunk.frame.index, dtype=object)
    fields = {
        "external_id": validate.ids(chunk, source.name, columns.item),
        "title": validate.optional_text(
            chunk, source.name, columns.title, validate.MAX_TITLE_LENGTH, title=True
        )
        if columns.title in present
        else blank,
        "release_date": validate.optional_dates(chunk, source.name, columns.release_date)
        if columns.release_date in present
        else blank,
        "genres": validate.genre_lists(chunk, source.name, columns.genres)
        if columns.genres in present
        else blank,
        "attributes": _attributes(
            chunk, {columns.item, columns.title, columns.release_date, columns.genres}
        ),
    }
    return _rows_with_numbers(chunk, fields)


def _with_internal_ids(
    connection: Connection, keys: Table, rows: pd.DataFrame, created: dict[str, int]
) -> pd.DataFrame:
    """Replace a chunk's external user and item ids by internal ones, creating new ids.

    Set-based per chunk: the chunk's distinct ids go to a staging table, new ones are
    inserted in order of first appearance (and counted in ``created``), and one query
    reads all their numbers back.
    """
    return pd.DataFrame(
        {
            "row": rows["row"],
            "user_id": _internal_ids(connection, keys, users, rows["user_external_id"], created),
            "item_id": _internal_ids(connection, keys, items, rows["item_external_id"], created),
            "value": rows["value"],
            "timestamp": rows["timestamp"],
        }
    )


def _internal_ids(
    connection: Connection, keys: Table, table: Table, external: pd.Series, created: dict[str, int]
) -> np.ndarray:
    codes, distinct = pd.factorize(external)
    if len(distinct) == 0:
        return np.zeros(0, dtype=np.int64)
    _bulk_insert(
        connection,
        keys,
        pd.DataFrame({"row": np.arange(len(distinct)), "external_id": distinct}),
    )
    created[table.name] += connection.execute(
        _insert(connection, table)
        .from_select(["external_id"], select(keys.c.external_id).where(true()).order_by(keys.c.row))
        .on_conflict_do_nothing(index_elements=[table.c.external_id])
        .execution_options(preserve_rowcount=True)
    ).rowcount
    # One index lookup per key, whatever the table's size: a join let PostgreSQL, with
    # no statistics for the rows this transaction added, scan all users per chunk.
    number = select(table.c.id).where(table.c.external_id == keys.c.external_id)
    numbers = _driver_integers(
        connection,
        select(number.scalar_subquery()).select_from(keys).order_by(keys.c.row),
        len(distinct),
    )
    connection.execute(delete(keys))
    return numbers[codes]


def _driver_integers(connection: Connection, query: Any, count: int) -> np.ndarray:
    """A one-column integer query's values, read through the driver's cursor: without
    SQLAlchemy's row objects, a third of the time ids took in a 20M-row load."""
    sql = str(query.compile(dialect=connection.dialect))
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(sql)
        return np.fromiter((row[0] for row in cursor), dtype=np.int64, count=count)
    finally:
        cursor.close()


def _reject_duplicate_ids(
    connection: Connection,
    staging: MetaData,
    users_source: TableSource | None,
    items_source: TableSource | None,
) -> None:
    for name, source in (("user", users_source), ("item", items_source)):
        if source is None:
            continue
        table = staging.tables[f"staging_{name}s"]
        duplicate = _first_duplicate(connection, table, [table.c.external_id])
        if duplicate is not None:
            (key,), first, last = duplicate
            raise IngestError(
                source.name, f"duplicate {name} {key!r}: row {first} has it already", last
            )


def _pair_numbers(user_ids: pd.Series, item_ids: pd.Series) -> np.ndarray:
    """One int64 per (user, item) of internal ids, both below 2**31."""
    return (user_ids.to_numpy(np.int64) << 32) | item_ids.to_numpy(np.int64)


def _has_repeated_pair(pairs: list[np.ndarray]) -> bool:
    """Whether a (user, item) pair occurs twice: a sort in numpy, several times cheaper
    than the database's GROUP BY over the staged rows (11 s of a 20M-row load), which
    runs only when there is a repeat, to name its rows. Empties ``pairs`` as it goes."""
    every = np.empty(sum(len(run) for run in pairs), dtype=np.int64)
    start = 0
    pairs.reverse()
    while pairs:  # each chunk's numbers freed as they are copied: no second copy of all
        run = pairs.pop()
        every[start : start + len(run)] = run
        start += len(run)
    every.sort()  # in place
    return bool(np.any(every[1:] == every[:-1]))


def _reject_duplicate_ratings(connection: Connection, staged: Table, source: TableSource) -> None:
    duplicate = _first_duplicate(connection, staged, [staged.c.user_id, staged.c.item_id])
    if duplicate is None:
        return
    (user_id, item_id), first, last = duplicate
    user = connection.execute(select(users.c.external_id).where(users.c.id == user_id)).scalar()
    item = connection.execute(select(items.c.external_id).where(items.c.id == item_id)).scalar()
    raise IngestError(
        source.name,
        f"duplicate rating of item {item!r} by user {user!r}: row {first} has it already",
        last,
    )


def _first_duplicate(
    connection: Connection, table: Table, keys: list[Column]
) -> tuple[list[Any], int, int] | None:
    """The key repeated latest in the file, with its first and last row, or None."""
    duplicate = connection.execute(
        select(*keys, func.min(table.c.row), func.max(table.c.row))
        .group_by(*keys)
        .having(func.count() > 1)
        .order_by(func.max(table.c.row))
        .limit(1)
    ).first()
    if duplicate is None:
        return None
    *key, first, last = duplicate
    return key, first, last


def _keep_unchanged_times(connection: Connection, staged: Table, ingested_at: int) -> None:
    """Give staged ratings without a time the stored time of the same rating, else now."""
    stored = (
        select(ratings.c.timestamp)
        .where(
            ratings.c.user_id == staged.c.user_id,
            ratings.c.item_id == staged.c.item_id,
            ratings.c.value == staged.c.value,
        )
        .scalar_subquery()
    )
    untimed = staged.c.timestamp.is_(None)
    connection.execute(update(staged).where(untimed).values(timestamp=stored))
    connection.execute(update(staged).where(untimed).values(timestamp=ingested_at))


def _next_write_number(connection: Connection) -> int:
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


def _insert(connection: Connection, table: Table) -> Any:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"recsys supports SQLite and PostgreSQL, not {dialect}")


def _count(connection: Connection, table: Table) -> int:
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def _merge_metadata(
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
        statement = _insert(connection, table).from_select(
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


def _merge_ratings(connection: Connection, staged: Table, seq: int) -> tuple[int, int]:
    """Update the stored ratings whose value or time changed, insert the new ones;
    the counts (inserted, updated).

    Rating writers take turns (see :func:`_next_write_number`), so no pair can appear
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
            _insert(connection, ratings)
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
