"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from fastapi import APIRouter, Response
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ApiKeyDep, EngineDep, ProbeDep, SettingsDep, StateDep
from api.errors import ServiceError
from api.metrics import render
from recsys.db.engine import DatabaseFileChanged, check_database_file, refuses_writes
from recsys.db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])
logger = logging.getLogger("recsys.api")


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/metrics",
    dependencies=[ApiKeyDep],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics() -> Response:
    """Prometheus metrics of every worker: requests and latency per route and status,
    the model version each worker serves, swaps, refused versions, stored feedback,
    fold-ins. Operational detail: the API key, when the server has one."""
    body, content_type = render()
    return Response(body, media_type=content_type)


def _ask_database(engine: Engine, probe: Engine) -> tuple[str | None, str | None]:
    """The schema revision, and why writes would be refused (None: they would not)."""
    check_database_file(engine)
    with probe.connect() as connection:
        connection.execute(text("SELECT 1"))
    return current_revision(probe), refuses_writes(probe)


@router.get("/ready")
async def ready(
    probe: ProbeDep, engine: EngineDep, settings: SettingsDep, state: StateDep
) -> dict[str, object]:
    """The database answers, its schema is current, and a model is loaded.

    The database is asked on a connection and a thread of the probe's own, within a few
    seconds: never from the pools that writers waiting on a long ingest may hold. The
    answer names no host or port (the log has the details)."""
    loop = asyncio.get_running_loop()
    ask = partial(_ask_database, engine, probe.engine)
    try:
        revision, read_only = await loop.run_in_executor(probe.thread, ask)
    except DatabaseFileChanged as error:
        raise ServiceError(503, "database_file_changed", str(error)) from None
    except SQLAlchemyError as error:
        logger.warning("readiness probe: the database does not answer: %s", error)
        message = f"database does not answer ({type(error).__name__}); the log has details"
        raise ServiceError(503, "database_unavailable", message) from None
    if read_only is not None:
        message = f"{read_only}: feedback and profiles cannot be stored"
        raise ServiceError(503, "database_read_only", message)
    head = head_revision(settings.database_url)
    if revision != head:
        raise ServiceError(
            503,
            "schema_outdated",
            f"database at revision {revision}, expected {head}: run `recsys db upgrade`",
        )
    broken = {
        objective: {"version": version_id, "error": error}
        for objective, (version_id, error) in state.broken.items()
    }
    if not state.models:
        if broken:
            listed = "; ".join(
                f"{objective} version {b['version']}: {b['error']}"
                for objective, b in broken.items()
            )
            message = f"no model could be loaded ({listed}): retrain or activate another version"
            raise ServiceError(503, "no_loadable_model", message)
        raise ServiceError(503, "no_model", "no model is active yet: run `recsys train`")
    return {
        "status": "ready",
        "schema_revision": revision,
        "model_version": state.roles.describing().version.id,
        "models": {objective: m.version.id for objective, m in state.models.items()},
        "recommendations_from": state.roles.recommending().version.id,
        "broken": broken,
    }
