"""The write log's numbers: every write to the ratings (ingestion, feedback, deletion)
takes the next one, in commit order, so that a worker follows them all by asking for
everything above the last number it saw."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from recsys.db.tables import deletions, ratings

RATING_WRITES_LOCK = 0x7265637379  # PostgreSQL advisory lock key: "recsy"


def write_number(connection: Connection) -> int:
    """The latest write number the connection sees, deletions included (0 before any)."""
    numbers = (
        connection.execute(select(func.max(table.c.seq))).scalar_one()
        for table in (ratings, deletions)
    )
    return max(int(n or 0) for n in numbers)


def next_write_number(connection: Connection) -> int:
    """The number this write stamps on the ratings it changes (and the tombstones it
    leaves): one more than any so far.

    Numbers must grow in commit order, or a worker that has seen number n could miss a
    later-committing n - 1. SQLite writers are already one at a time (BEGIN IMMEDIATE);
    on PostgreSQL a transaction-scoped advisory lock makes them take turns from here to
    their commit.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(RATING_WRITES_LOCK)))
    return write_number(connection) + 1
