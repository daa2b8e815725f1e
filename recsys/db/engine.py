"""Engine factory: one place that knows how to connect to SQLite and PostgreSQL.

SQLite takes one writer at a time. Every transaction that writes goes through
:func:`write_transaction`, which on SQLite takes the write lock when it begins
(``BEGIN IMMEDIATE``) and waits up to ``WRITER_WAIT_SECONDS`` for another writer
to finish: concurrent writers queue instead of one failing half-way (a deferred
transaction that reads first cannot wait for the lock it later needs). Readers
never wait (WAL). On PostgreSQL rating writers take turns through an advisory lock
(see recsys.db.merge), and a writer waits for a lock as long as on SQLite
(``lock_timeout``), not for as long as a big ingest holds it: waiting writers would
otherwise hold every pooled connection. Past the bound, :func:`is_busy` recognises
the error on either database, and the transaction has written nothing.

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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

# How long a writer waits for another writer before giving up (both databases).
WRITER_WAIT_SECONDS = 10.0
PROBE_SECONDS = 3  # how long /ready waits for the database
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout runs out


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
_WRITER_TURNS: WeakKeyDictionary[Engine, threading.RLock] = WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


class WriterWaitExceeded(SQLAlchemyError):
    """The other writers of this process held their turn past the bound."""


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``database_url``; SQLite gets WAL, enforced foreign keys and
    a busy timeout."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connect_args = {"timeout": WRITER_WAIT_SECONDS, **kwargs.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        opened = _sqlite_file(url.database)
        if opened is not None:
            _OPENED[engine] = opened

            @event.listens_for(engine, "do_connect")
            def _same_file(*_: Any) -> None:
                # Before SQLite opens the path: it would create an empty file where the
                # database was deleted.
                opened.check()

            @event.listens_for(engine, "connect")
            def _note_file(*_: Any) -> None:
                opened.check()  # the first connection: which file it opened

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
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
            options = connection.get_execution_options()
            if not options.get("recsys_writes", False):
                connection.exec_driver_sql("BEGIN")
                return
            # Wait for the write lock only for what is left of the writer's bound.
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {options['recsys_wait_ms']}")
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: committed when the block ends, rolled back on an error.

    Writers take turns within the process before they take a pooled connection, then
    wait for the database's write lock for what is left of ``WRITER_WAIT_SECONDS``:
    a writer waits that long at most, in all, and a crowd of writers held up by a long
    ingest holds one pooled connection, not all of them. On SQLite it holds the write
    lock from its first statement (see the module docstring).
    """
    deadline = time.monotonic() + WRITER_WAIT_SECONDS
    turn = _writer_turn(engine)
    if not turn.acquire(timeout=WRITER_WAIT_SECONDS):
        raise WriterWaitExceeded(
            f"the other writers of this process held the database for over "
            f"{WRITER_WAIT_SECONDS:.0f} s"
        )
    try:
        with engine.connect() as connection:
            wait_ms = max(1, int((deadline - time.monotonic()) * 1000))
            connection.execution_options(recsys_writes=True, recsys_wait_ms=wait_ms)
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = {wait_ms}")
                yield connection
                check_database_file(engine)  # before the commit: never acknowledge a lost write
    finally:
        turn.release()


def _writer_turn(engine: Engine) -> threading.RLock:
    """The lock this process's writers to ``engine`` take turns with (re-entrant: a write
    may call another inside it)."""
    with _TURNS_LOCK:
        return _WRITER_TURNS.setdefault(engine, threading.RLock())


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
    """Whether ``error`` is "another writer holds the lock" after the wait, on SQLite or
    PostgreSQL."""
    if isinstance(error, WriterWaitExceeded):
        return True
    if not isinstance(error, OperationalError):
        return False
    return "database is locked" in str(error.orig) or (
        getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE
    )


def make_probe_engine(database_url: str) -> Engine:
    """An engine for health probes: a connection of its own each time (never one from
    the pool that requests may have exhausted), and a few seconds at most to answer."""
    if make_url(database_url).get_backend_name() == "sqlite":
        return make_engine(
            database_url, poolclass=NullPool, connect_args={"timeout": PROBE_SECONDS}
        )
    return make_engine(
        database_url,
        poolclass=NullPool,
        connect_args={
            "connect_timeout": PROBE_SECONDS,
            "options": f"-c statement_timeout={PROBE_SECONDS * 1000}",
        },
    )


def dialect_insert(connection: Connection, table: Table) -> Any:
    """INSERT with this database's ON CONFLICT clauses (both dialects spell them alike)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"recsys supports SQLite and PostgreSQL, not {dialect}")


def driver_connection(connection: Connection) -> Any:
    """The driver's own connection under ``connection`` (sqlite3's or psycopg's), for the
    bulk paths that go around SQLAlchemy's rows; always there on a live connection."""
    driver = connection.connection.driver_connection
    assert driver is not None, "the connection is closed"
    return driver
