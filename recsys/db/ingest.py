"""Load ratings and user/item metadata into the database, all or nothing.

Each input is read in chunks and validated into a temporary staging table inside
one transaction; only when every file is clean are the rows merged into the real
tables (upserts keyed by external id and by (user, item)). A bad row anywhere
rolls the whole transaction back, so the database is left exactly as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from rich.progress import Progress
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import JSON

from recsys.db import validate
from recsys.db.engine import write_transaction
from recsys.db.sources import Chunk, IngestError, TableSource
from recsys.db.tables import Json, items, ratings, users

USER_FIELDS = ("age", "gender", "occupation", "zip_code")
RATING_WRITES_LOCK = 0x7265637379  # PostgreSQL advisory lock key: "recsy"


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
        try:
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
            ratings_read = 0
            if ratings_source is not None:
                ratings_read = _stage(
                    connection,
                    staging.tables["staging_ratings"],
                    ratings_source,
                    progress,
                    lambda chunk: _rating_rows(chunk, ratings_source, columns, rating_range),
                )
            _reject_duplicates(connection, staging, users_source, items_source, ratings_source)
            _keep_unchanged_times(connection, staging.tables["staging_ratings"], ingested_at)
            report = _merge(connection, staging, ratings_read)
        finally:
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
        Column("user_external_id", String(255)),
        Column("item_external_id", String(255)),
        Column("value", Float),
        Column("timestamp", BigInteger),
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
    for column in table.columns:
        if isinstance(column.type, JSON):
            rows[column.name] = [
                None if value is None else json.dumps(value) for value in rows[column.name]
            ]
    rows = rows[[c.name for c in table.columns]].astype(object).where(rows.notna(), None)
    records = list(rows.itertuples(index=False, name=None))
    driver = connection.connection.driver_connection
    names = ", ".join(c.name for c in table.columns)
    if connection.dialect.name == "postgresql":
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy,
        ):
            for record in records:
                copy.write_row(record)
    else:
        placeholders = ", ".join("?" for _ in table.columns)
        driver.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({placeholders})", records)


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
        "title": validate.optional_text(chunk, source.name, columns.title)
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


def _reject_duplicates(
    connection: Connection,
    staging: MetaData,
    users_source: TableSource | None,
    items_source: TableSource | None,
    ratings_source: TableSource | None,
) -> None:
    checks = [
        (staging.tables["staging_users"], ["external_id"], users_source),
        (staging.tables["staging_items"], ["external_id"], items_source),
        (
            staging.tables["staging_ratings"],
            ["user_external_id", "item_external_id"],
            ratings_source,
        ),
    ]
    for table, keys, source in checks:
        if source is None:
            continue
        key_columns = [table.c[k] for k in keys]
        duplicate = connection.execute(
            select(*key_columns, func.min(table.c.row), func.max(table.c.row))
            .group_by(*key_columns)
            .having(func.count() > 1)
            .order_by(func.max(table.c.row))
            .limit(1)
        ).first()
        if duplicate is None:
            continue
        *key, first, last = duplicate
        if len(key) == 2:
            what = f"rating of item {key[1]!r} by user {key[0]!r}"
        else:
            what = f"{table.name.removeprefix('staging_').rstrip('s')} {key[0]!r}"
        raise IngestError(source.name, f"duplicate {what}: row {first} has it already", last)


def _keep_unchanged_times(connection: Connection, staged: Table, ingested_at: int) -> None:
    """Give staged ratings without a time the stored time of the same rating, else now."""
    stored = (
        select(ratings.c.timestamp)
        .select_from(
            ratings.join(users, users.c.id == ratings.c.user_id).join(
                items, items.c.id == ratings.c.item_id
            )
        )
        .where(
            users.c.external_id == staged.c.user_external_id,
            items.c.external_id == staged.c.item_external_id,
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


def _merge(connection: Connection, staging: MetaData, ratings_read: int) -> IngestReport:
    staged_users = staging.tables["staging_users"]
    staged_items = staging.tables["staging_items"]
    staged_ratings = staging.tables["staging_ratings"]
    users_before, items_before = _count(connection, users), _count(connection, items)

    # Metadata first: given fields overwrite, blanks keep what the database had,
    # and rows whose fields all match are not touched (a re-load changes nothing).
    # "WHERE true" resolves SQLite's ON CONFLICT parsing ambiguity after SELECT.
    updated = {}
    for table, staged, fields in (
        (users, staged_users, (*USER_FIELDS, "attributes")),
        (items, staged_items, ("title", "release_date", "genres", "attributes")),
    ):
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
        updated[table.name] = changed - (_count(connection, table) - count_before)

    for table, key in ((users, "user_external_id"), (items, "item_external_id")):
        connection.execute(
            _insert(connection, table)
            .from_select(
                ["external_id"],
                # New ids are numbered in order of first appearance in the file.
                select(staged_ratings.c[key])
                .where(true())
                .group_by(staged_ratings.c[key])
                .order_by(func.min(staged_ratings.c.row)),
            )
            .on_conflict_do_nothing(index_elements=[table.c.external_id])
        )

    ratings_before = _count(connection, ratings)
    seq = _next_write_number(connection)
    joined = staged_ratings.join(
        users, users.c.external_id == staged_ratings.c.user_external_id
    ).join(items, items.c.external_id == staged_ratings.c.item_external_id)
    statement = _insert(connection, ratings).from_select(
        ["user_id", "item_id", "value", "timestamp", "seq"],
        select(
            users.c.id,
            items.c.id,
            staged_ratings.c.value,
            staged_ratings.c.timestamp,
            literal(seq, BigInteger),
        )
        .select_from(joined)
        .where(true())
        .order_by(users.c.id, items.c.id),
    )
    statement = statement.on_conflict_do_update(
        index_elements=[ratings.c.user_id, ratings.c.item_id],
        set_={
            "value": statement.excluded.value,
            "timestamp": statement.excluded.timestamp,
            "seq": statement.excluded.seq,
        },
        where=(ratings.c.value != statement.excluded.value)
        | (ratings.c.timestamp != statement.excluded.timestamp),
    )
    changed = connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount
    inserted = _count(connection, ratings) - ratings_before
    return IngestReport(
        ratings_read=ratings_read,
        ratings_inserted=inserted,
        ratings_updated=max(changed - inserted, 0),
        users_created=_count(connection, users) - users_before,
        items_created=_count(connection, items) - items_before,
        users_updated=updated["users"],
        items_updated=updated["items"],
    )
