"""Engine factory: one place that knows how to connect to SQLite and PostgreSQL.

SQLite takes one writer at a time. Every transaction that writes goes through
:func:`write_transaction`, which on SQLite takes the write lock when it begins
(``BEGIN IMMEDIATE``) and waits up to ``SQLITE_BUSY_SECONDS`` for another writer
to finish: concurrent writers queue instead of one failing half-way (a deferred
transaction that reads first cannot wait for the lock it later needs). Readers
never wait (WAL). Past the bound, :func:`is_busy` recognises the error, and the
transaction has written nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

# How long a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_SECONDS = 10.0


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``database_url``; SQLite gets WAL, enforced foreign keys and
    a busy timeout."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connect_args = {"timeout": SQLITE_BUSY_SECONDS, **kwargs.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL lets the API read while the training job or ingestion writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # Let SQLAlchemy, not the sqlite3 module, decide where transactions
            # begin, so ingestion is one real all-or-nothing transaction.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Connection) -> None:
            writes = connection.get_execution_options().get("recsys_writes", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: committed when the block ends, rolled back on an error.

    On SQLite it holds the write lock from its first statement (see the module
    docstring); elsewhere it is an ordinary transaction.
    """
    with engine.connect() as connection:
        connection.execution_options(recsys_writes=True)
        with connection.begin():
            yield connection


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's "another writer holds the database" after the wait."""
    return isinstance(error, OperationalError) and "database is locked" in str(error.orig)
