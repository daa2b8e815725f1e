"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.errors import ServiceError
from recsys.db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready")
def ready(request: Request) -> dict[str, str]:
    """The database answers and its schema is current."""
    engine = request.app.state.engine
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current_revision(engine)
    except SQLAlchemyError as error:
        raise ServiceError(
            503, "database_unavailable", f"database does not answer: {error}"
        ) from None
    head = head_revision(request.app.state.settings.database_url)
    if revision != head:
        raise ServiceError(
            503,
            "schema_outdated",
            f"database at revision {revision}, expected {head}: run `recsys db upgrade`",
        )
    return {"status": "ready", "schema_revision": revision}
