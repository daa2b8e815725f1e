"""Engine factory: one place that knows how to connect to SQLite and PostgreSQL.

SQLite takes one writer at a time. Every transaction that writes goes through
:func:`write_transaction`, which on SQLite takes the write lock when it begins
(``BEGIN IMMEDIATE``) and waits up to ``SQLITE_BUSY_SECONDS`` for another writer
to finish: concurrent writers queue instead of one failing half-way (a deferred
transaction that reads first cannot wait for the lock it later needs). Readers
never wait (WAL). Past the bound, :func:`is_busy` recognises the error, and the
transaction has written nothing.

A SQLite file deleted or replaced under a running service would swallow writes: the
pooled connections keep writing to the unlinked file (or the old one), and every
acknowledged rating is gone at the next start. The engine remembers which file it
opened (device and inode, at its first connection); a write transaction checks it
before it commits, a new connection when it opens, and ``/ready`` on every probe.
On a mismatch each of them raises :class:`DatabaseFileChanged`, and nothing is
committed until the service is restarted on the file that is there now.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

# How long a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_SECONDS = 10.0


class DatabaseFileChanged(SQLAlchemyError):
    """The SQLite file this engine opened was deleted or replaced since."""


@dataclass
class _OpenedFile:
    """The SQLite file an engine opened: its path, and device and inode once opened."""

    path: Path
    identity: tuple[int, int] | None = None

    def check(self) -> None:
        """Raise DatabaseFileChanged unless ``path`` is still the file first opened."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self.identity is None:
                return
            raise DatabaseFileChanged(
                f"the SQLite file {self.path} was deleted while in use: nothing is stored "
                "until the service is restarted"
            ) from None
        identity = (stat.st_dev, stat.st_ino)
        if self.identity is None:
            self.identity = identity
        elif identity != self.identity:
            raise DatabaseFileChanged(
                f"the SQLite file {self.path} was replaced by another file while in use: "
                "nothing is stored until the service is restarted"
            )


_OPENED: WeakKeyDictionary[Engine, _OpenedFile] = WeakKeyDictionary()


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``database_url``; SQLite gets WAL, enforced foreign keys and
    a busy timeout."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connect_args = {"timeout": SQLITE_BUSY_SECONDS, **kwargs.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        opened = _sqlite_file(url.database)
        if opened is not None:
            _OPENED[engine] = opened

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            if opened is not None:
                opened.check()  # a new connection to a replaced file: refused
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL lets the API read while the training job or ingestion writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA cache_size=-262144")
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
            check_database_file(engine)  # before the commit: never acknowledge a lost write


def check_database_file(engine: Engine) -> None:
    """Raise DatabaseFileChanged if ``engine``'s SQLite file was deleted or replaced since
    it was first opened (see the module docstring); nothing for other databases."""
    opened = _OPENED.get(engine)
    if opened is not None:
        opened.check()


def _sqlite_file(database: str | None) -> _OpenedFile | None:
    """The file a SQLite URL's database names (None in memory)."""
    if not database or database == ":memory:" or "mode=memory" in database:
        return None
    return _OpenedFile(Path(database.removeprefix("file:")).resolve())


def refuses_writes(engine: Engine) -> str | None:
    """Why the database would refuse a write (read-only file or server), or None."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if engine.url.query.get("mode") == "ro":
            return f"the SQLite file {database} is opened read-only (mode=ro)"
        if not database or database == ":memory:":
            return None
        path = Path(database.removeprefix("file:"))
        if path.exists() and not os.access(path, os.W_OK):
            return f"the SQLite file {path} is read-only"
        if not os.access(path.parent, os.W_OK):  # WAL needs its -wal and -shm files beside it
            return f"the folder of the SQLite file, {path.parent}, is read-only"
        return None
    with engine.connect() as connection:
        read_only = connection.exec_driver_sql("SHOW transaction_read_only").scalar()
        recovering = connection.exec_driver_sql("SELECT pg_is_in_recovery()").scalar()
    if read_only == "on" or recovering:
        return "the PostgreSQL server accepts reads only (a standby, or read-only by default)"
    return None


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's "another writer holds the database" after the wait."""
    return isinstance(error, OperationalError) and "database is locked" in str(error.orig)
