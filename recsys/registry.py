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
