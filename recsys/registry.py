"""Model versions: each training run gets a row in ``model_versions`` and a weights file.

A version is ``training`` while it trains, then ``ready`` (with its metrics) or
``failed`` (with the error). At most one version is active: the one the API
serves and the CLI reads by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from recsys.db.tables import model_versions


@dataclass(frozen=True)
class ModelVersion:
    id: int
    kind: str
    created_at: datetime
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    artifact_path: str | None
    status: str
    error: str | None
    is_active: bool


def _version(row: Any) -> ModelVersion:
    return ModelVersion(**row._mapping)


def start_version(engine: Engine, kind: str, hyperparameters: dict[str, Any]) -> int:
    """Register a run that is starting; returns its id."""
    with engine.begin() as connection:
        return connection.execute(
            insert(model_versions)
            .values(
                kind=kind,
                hyperparameters=hyperparameters,
                metrics={},
                status="training",
                is_active=False,
            )
            .returning(model_versions.c.id)
        ).scalar_one()


def finish_version(
    engine: Engine,
    version_id: int,
    metrics: dict[str, Any],
    artifact_path: Path,
    activate: bool = True,
) -> None:
    """Mark a run ready with its metrics and weights; make it the active one."""
    with engine.begin() as connection:
        if activate:
            connection.execute(
                update(model_versions).values(is_active=False).where(model_versions.c.is_active)
            )
        connection.execute(
            update(model_versions)
            .where(model_versions.c.id == version_id)
            .values(
                status="ready",
                metrics=metrics,
                artifact_path=str(artifact_path),
                is_active=activate,
            )
        )


def fail_version(engine: Engine, version_id: int, error: str) -> None:
    """Mark a run failed; the active version stays what it was."""
    with engine.begin() as connection:
        connection.execute(
            update(model_versions)
            .where(model_versions.c.id == version_id)
            .values(status="failed", error=error[:2000])
        )


def list_versions(engine: Engine) -> list[ModelVersion]:
    """All versions, newest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(model_versions).order_by(model_versions.c.id.desc()))
        return [_version(row) for row in rows]


def active_version(engine: Engine) -> ModelVersion | None:
    """The version being served, if any."""
    with engine.connect() as connection:
        row = connection.execute(select(model_versions).where(model_versions.c.is_active)).first()
    return _version(row) if row is not None else None


def get_version(engine: Engine, version_id: int) -> ModelVersion | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(model_versions).where(model_versions.c.id == version_id)
        ).first()
    return _version(row) if row is not None else None


class ActivationError(ValueError):
    """A version that cannot be served: unknown, not ready, or its weights do not load."""


def check_artifact(version: ModelVersion) -> None:
    """Refuse a version whose weights file is missing or does not load."""
    from recsys.collab import load_recommender  # the registry itself needs no torch

    if version.status != "ready" or version.artifact_path is None:
        raise ActivationError(f"model version {version.id} is {version.status}, not ready")
    try:
        load_recommender(version.artifact_path)
    except Exception as error:  # torch raises many types for a damaged file
        raise ActivationError(
            f"model version {version.id}: its weights at {version.artifact_path} do not load "
            f"({type(error).__name__}: {error})"
        ) from error


def activate(engine: Engine, version_id: int) -> ModelVersion:
    """Make a ready version the active one, after checking that its weights load."""
    version = get_version(engine, version_id)
    if version is None:
        raise ActivationError(f"there is no model version {version_id}")
    check_artifact(version)
    with engine.begin() as connection:
        connection.execute(
            update(model_versions).values(is_active=False).where(model_versions.c.is_active)
        )
        connection.execute(
            update(model_versions).where(model_versions.c.id == version_id).values(is_active=True)
        )
    return get_version(engine, version_id)  # type: ignore[return-value]


def rollback(engine: Engine) -> ModelVersion:
    """Activate the newest ready version older than the active one."""
    current = active_version(engine)
    candidates = [
        v
        for v in list_versions(engine)
        if v.status == "ready" and (current is None or v.id < current.id)
    ]
    if not candidates:
        raise ActivationError("there is no earlier ready version to roll back to")
    return activate(engine, candidates[0].id)


def fail_stale(engine: Engine) -> int:
    """Mark versions left ``training`` by a run that died as ``failed``; returns how many.

    Runs one at a time (one trainer), so any ``training`` row seen when a new run
    starts belongs to a run that is gone.
    """
    with engine.begin() as connection:
        return connection.execute(
            update(model_versions)
            .where(model_versions.c.status == "training")
            .values(status="failed", error="the training run stopped before it finished")
            .execution_options(preserve_rowcount=True)
        ).rowcount
