"""Staging: each input file, validated chunk by chunk, into a temporary table.

Rows reach the staging tables through the driver itself (COPY on PostgreSQL,
executemany on SQLite); ratings get their internal user and item ids on the way,
creating the ids that are new. Nothing here touches the real ratings: the merge
(:mod:`recsys.db.merge`) does, once every file is staged and clean.
"""

from __future__ import annotations

import csv
import io
import json
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
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    true,
    update,
)
from sqlalchemy.types import JSON

from recsys.db import validate
from recsys.db.engine import dialect_insert, driver_connection
from recsys.db.sources import Chunk, IngestError, TableSource
from recsys.db.tables import Json, items, ratings, users

USER_FIELDS = ("age", "gender", "occupation", "zip_code")


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


def staging_tables() -> MetaData:
    staging = MetaData()
    temporary = ["TEMPORARY"]
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
        prefixes=temporary,
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
        prefixes=temporary,
    )
    Table(
        "staging_ratings",
        staging,
        Column("row", BigInteger),
        Column("user_id", Integer),
        Column("item_id", Integer),
        Column("value", Float),
        Column("timestamp", BigInteger),
        prefixes=temporary,
    )
    # One chunk's distinct external ids at a time, to find (or create) their internal ids.
    Table(
        "staging_keys",
        staging,
        Column("row", BigInteger),
        Column("external_id", String(255)),
        prefixes=temporary,
    )
    return staging


def stage(
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
        bulk_insert(connection, table, rows)
        n_rows += len(rows)
        if progress is not None and task is not None:
            progress.advance(task, len(rows))
    return n_rows


def bulk_insert(connection: Connection, table: Table, rows: pd.DataFrame) -> None:
    """Write staged rows through the driver itself: COPY on PostgreSQL, executemany on SQLite.

    Going around SQLAlchemy's per-row parameter handling is what makes a
    20M-row file practical; the rows stay inside the surrounding transaction.
    """
    if rows.empty:
        return
    names = [c.name for c in table.columns]
    values = [_python_values(rows[c.name], isinstance(c.type, JSON)) for c in table.columns]
    driver = driver_connection(connection)
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


def rating_rows(
    chunk: Chunk, source: TableSource, columns: ColumnNames, rating_range: tuple[float, float]
) -> pd.DataFrame:
    low, high = rating_range
    # Without a time column a rating happened at ingestion, unless the database already
    # holds the same rating (see keep_unchanged_times): re-loading a file changes nothing.
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


def user_rows(chunk: Chunk, source: TableSource, columns: ColumnNames) -> pd.DataFrame:
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


def item_rows(chunk: Chunk, source: TableSource, columns: ColumnNames) -> pd.DataFrame:
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


def with_internal_ids(
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
    bulk_insert(
        connection,
        keys,
        pd.DataFrame({"row": np.arange(len(distinct)), "external_id": distinct}),
    )
    created[table.name] += connection.execute(
        dialect_insert(connection, table)
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
    cursor = driver_connection(connection).cursor()
    try:
        cursor.execute(sql)
        return np.fromiter((row[0] for row in cursor), dtype=np.int64, count=count)
    finally:
        cursor.close()


def reject_duplicate_ids(
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


def pair_numbers(user_ids: pd.Series, item_ids: pd.Series) -> np.ndarray:
    """One int64 per (user, item) of internal ids, both below 2**31."""
    return (user_ids.to_numpy(np.int64) << 32) | item_ids.to_numpy(np.int64)


def has_repeated_pair(pairs: list[np.ndarray]) -> bool:
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


def reject_duplicate_ratings(connection: Connection, staged: Table, source: TableSource) -> None:
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


def keep_unchanged_times(connection: Connection, staged: Table, ingested_at: int) -> None:
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
