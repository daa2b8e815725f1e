"""Model versions: each training run gets a row in ``model_versions`` and a weights file.

A version is ``training`` while it trains, then ``ready`` (with its metrics) or
``failed`` (with the error). Each version has an objective, ``rating`` or
``ranking``, and at most one version per objective is active: the API
recommends with the active ranking version when there is one, and predicts
ratings (and interprets) with the active rating version.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from recsys.collab.recommender import load_recommender
from recsys.db.engine import write_transaction
from recsys.db.identity import read_identity
from recsys.db.tables import deletions, model_versions


@dataclass(frozen=True)
class ModelVersion:
    id: int
    kind: str
    objective: str
    created_at: datetime
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    artifact_path: str | None
    status: str
    error: str | None
    is_active: bool
    owner: str | None = None  # "host:pid" of the run while it trains
    heartbeat_at: datetime | None = None
    # Users erased and items deleted after its training data was read (filled in by
    # list_versions): its weights still hold what it learned from them, though it never
    # answers with them (recsys.serving.loading); `recsys models forget` trains anew.
    deleted_since_training: int = 0

    @property
    def trained_through(self) -> int:
        """The write number its training data included (see recsys.db.write_log): users
        erased and items deleted after it are in its weights. 0 for versions trained
        before the number was recorded: every erasure counts for them."""
        return int(self.metrics.get("trained_through", 0))


def _version(row: Any) -> ModelVersion:
    return ModelVersion(**row._mapping)


OBJECTIVES = ("rating", "ranking")
ACTIVATION_LOCK = 0x61637476  # PostgreSQL advisory lock key for activations: "actv"
# A training run says it is alive this often; one silent for much longer is gone.
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 600.0


def start_version(
    engine: Engine, kind: str, hyperparameters: dict[str, Any], objective: str = "rating"
) -> int:
    """Register a run that is starting; returns its id."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be rating or ranking, not {objective!r}")
    with write_transaction(engine) as connection:
        return connection.execute(
            insert(model_versions)
            .values(
                kind=kind,
                objective=objective,
                hyperparameters=hyperparameters,
                metrics={},
                status="training",
                is_active=False,
                owner=this_process(),
                heartbeat_at=_now(),
            )
            .returning(model_versions.c.id)
        ).scalar_one()


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


def heartbeat(engine: Engine, version_id: int) -> None:
    """Say that the run training ``version_id`` is still alive."""
    with write_transaction(engine) as connection:
        connection.execute(
            update(model_versions)
            .where(model_versions.c.id == version_id, model_versions.c.status == "training")
            .values(heartbeat_at=_now())
        )


@contextmanager
def heartbeats(engine: Engine, version_id: int, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """Heartbeat ``version_id`` from a background thread while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            with contextlib.suppress(SQLAlchemyError):  # a missed beat is no failure
                heartbeat(engine, version_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{version_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def finish_version(
    engine: Engine,
    version_id: int,
    metrics: dict[str, Any],
    artifact_path: Path,
    activate: bool = True,
    kind: str | None = None,
) -> None:
    """Mark a run ready with its metrics and weights; with ``activate``, the active one
    of its objective. ``kind``: the model it turned out to be (for ``auto``)."""
    with write_transaction(engine) as connection:
        if activate:
            _deactivate(connection, version_id)
        connection.execute(
            update(model_versions)
            .where(model_versions.c.id == version_id)
            .values(
                status="ready",
                metrics=metrics,
                # Absolute, so that commands and servers started elsewhere find it.
                artifact_path=str(Path(artifact_path).resolve()),
                is_active=activate,
                **({} if kind is None else {"kind": kind}),
            )
        )


def fail_version(engine: Engine, version_id: int, error: str) -> None:
    """Mark a run failed; the active version stays what it was."""
    with write_transaction(engine) as connection:
        connection.execute(
            update(model_versions)
            .where(model_versions.c.id == version_id)
            .values(status="failed", error=error[:2000])
        )


def list_versions(engine: Engine) -> list[ModelVersion]:
    """All versions, newest first, each with the erasures and item deletions since its
    training (``deleted_since_training``)."""
    with engine.connect() as connection:
        rows = connection.execute(select(model_versions).order_by(model_versions.c.id.desc()))
        versions = [_version(row) for row in rows]
        numbers = connection.execute(
            select(deletions.c.seq).where(deletions.c.kind.in_(("user", "item")))
        ).scalars()
        later = np.sort(np.fromiter(numbers, dtype=np.int64))
    since = lambda v: int(len(later) - later.searchsorted(v.trained_through, "right"))  # noqa: E731
    return [
        replace(v, deleted_since_training=since(v)) if v.artifact_path is not None else v
        for v in versions
    ]


def active_version(engine: Engine, objective: str = "rating") -> ModelVersion | None:
    """The active version of ``objective``, if any."""
    with engine.connect() as connection:
        row = connection.execute(
            select(model_versions)
            .where(model_versions.c.is_active, model_versions.c.objective == objective)
            .order_by(model_versions.c.id.desc())  # one at most (a unique index); newest
        ).first()
    return _version(row) if row is not None else None


def recommending_objectives(recommend_with: str = "ranking") -> tuple[str, str]:
    """Which objective's active version answers recommendations, in order of preference:
    the ranking model (trained on what users pick) unless told ``rating``; either stands
    in for the other when it is the only one."""
    if recommend_with not in OBJECTIVES:
        raise ValueError(f"recommend_with must be rating or ranking, not {recommend_with!r}")
    return ("ranking", "rating") if recommend_with == "ranking" else ("rating", "ranking")


def _deactivate(connection: Connection, version_id: int) -> None:
    """Deactivate the active version of ``version_id``'s objective (before activating it).

    Activations take turns from here to their commit: on PostgreSQL two at once would
    each deactivate the version active before both and activate their own (SQLite's
    writers already take turns). The partial unique index ``ux_model_versions_active``
    refuses whatever slips past.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(ACTIVATION_LOCK)))
    objective = (
        select(model_versions.c.objective)
        .where(model_versions.c.id == version_id)
        .scalar_subquery()
    )
    connection.execute(
        update(model_versions)
        .values(is_active=False)
        .where(model_versions.c.is_active, model_versions.c.objective == objective)
    )


def get_version(engine: Engine, version_id: int) -> ModelVersion | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(model_versions).where(model_versions.c.id == version_id)
        ).first()
    return _version(row) if row is not None else None


class ActivationError(ValueError):
    """A version that cannot be served: unknown, not ready, or its weights do not load."""


class NoSuchVersionError(ActivationError):
    """There is no model version of that id."""


class CannotActivateError(ActivationError):
    """The version exists but cannot be served: not ready, its weights do not load, or
    nothing earlier to roll back to."""


def check_artifact(engine: Engine, version: ModelVersion) -> None:
    """Refuse a version whose weights file is missing, does not load, or was trained on
    another database."""
    if version.status != "ready" or version.artifact_path is None:
        raise CannotActivateError(f"model version {version.id} is {version.status}, not ready")
    try:
        load_recommender(version.artifact_path, database=read_identity(engine))
    except SQLAlchemyError:
        raise
    except Exception as error:  # torch raises many types for a damaged file
        raise CannotActivateError(
            f"model version {version.id}: its weights at {version.artifact_path} do not load "
            f"({type(error).__name__}: {error})"
        ) from error


def activate(engine: Engine, version_id: int) -> ModelVersion:
    """Make a ready version the active one of its objective, after checking that its
    weights load."""
    version = get_version(engine, version_id)
    if version is None:
        raise NoSuchVersionError(f"there is no model version {version_id}")
    check_artifact(engine, version)
    with write_transaction(engine) as connection:
        _deactivate(connection, version_id)
        connection.execute(
            update(model_versions).where(model_versions.c.id == version_id).values(is_active=True)
        )
    return get_version(engine, version_id)  # type: ignore[return-value]  # just activated: it exists


def rollback(engine: Engine, objective: str = "rating") -> ModelVersion:
    """Activate the newest ready version of ``objective`` older than its active one."""
    if objective not in OBJECTIVES:
        raise CannotActivateError(f"objective must be rating or ranking, not {objective!r}")
    current = active_version(engine, objective)
    candidates = [
        v
        for v in list_versions(engine)
        if v.status == "ready"
        and v.objective == objective
        and (current is None or v.id < current.id)
    ]
    if not candidates:
        raise CannotActivateError(f"there is no earlier ready {objective} version to roll back to")
    return activate(engine, candidates[0].id)


def fail_stale(engine: Engine) -> list[int]:
    """Mark runs left ``training`` by a process that is provably gone as ``failed``; returns
    their ids.

    A run is gone when it ran on this host and its process no longer exists, when its
    last heartbeat is older than ``STALE_AFTER_SECONDS`` (another host, or a hung
    process), or when it predates owners (no owner recorded). A live run — another
    `recsys train` of another objective, say — is never touched.
    """
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                model_versions.c.id, model_versions.c.owner, model_versions.c.heartbeat_at
            ).where(model_versions.c.status == "training")
        ).all()
    stale = [row.id for row in rows if _is_gone(row.owner, row.heartbeat_at)]
    if not stale:
        return []
    with write_transaction(engine) as connection:
        return list(
            connection.execute(
                update(model_versions)
                .where(model_versions.c.id.in_(stale), model_versions.c.status == "training")
                .values(status="failed", error="the training run stopped before it finished")
                .returning(model_versions.c.id)
            ).scalars()
        )


def _is_gone(owner: str | None, heartbeat_at: datetime | None) -> bool:
    if owner is None or heartbeat_at is None:
        return True
    if heartbeat_at.tzinfo is None:  # SQLite hands back naive UTC times
        heartbeat_at = heartbeat_at.replace(tzinfo=UTC)
    if (_now() - heartbeat_at).total_seconds() > STALE_AFTER_SECONDS:
        return True
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
