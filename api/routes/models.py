"""Model versions and the one being served."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import Engine

from api.deps import ApiKeyDep, EngineDep
from api.errors import ServiceError
from api.schemas import ModelVersionOut
from recsys.jobs.model_versions import (
    ActivationError,
    ModelVersion,
    activate,
    active_version,
    list_versions,
    rollback,
)

# The registry is operational detail (runs, hosts, metrics, paths): all of it needs the key.
router = APIRouter(tags=["models"], dependencies=[ApiKeyDep])


@router.get("/models", response_model=list[ModelVersionOut])
def models(engine: EngineDep) -> list[dict]:
    """Every training run, newest first, with its status and metrics."""
    return [asdict(v) for v in list_versions(engine)]


Objective = Annotated[Literal["rating", "ranking"], Query(description="rating or ranking")]


@router.get("/models/active", response_model=ModelVersionOut)
def active(engine: EngineDep, objective: Objective = "rating") -> dict:
    """The active version of an objective (rating: predictions; ranking: recommendations)."""
    version = active_version(engine, objective)
    if version is None:
        raise ServiceError(404, "no_active_model", f"no {objective} model version is active yet")
    return asdict(version)


def _swap(request: Request, engine: Engine, change: Callable[[Engine], ModelVersion]) -> dict:
    try:
        version = change(engine)
    except ActivationError as error:
        status = 404 if "there is no model version" in str(error) else 409
        code = "unknown_version" if status == 404 else "cannot_activate"
        raise ServiceError(status, code, f"{error}; the active version is unchanged") from None
    request.app.state.service.follow_registry(engine)  # this worker now; others poll
    return asdict(version)


@router.post("/models/{version_id}/activate", response_model=ModelVersionOut)
def activate_version(
    version_id: Annotated[int, Path(ge=1, le=2**63 - 1)], request: Request, engine: EngineDep
) -> dict:
    """Serve this version for its objective from now on (its weights are checked first)."""
    return _swap(request, engine, lambda e: activate(e, version_id))


@router.post("/models/rollback", response_model=ModelVersionOut)
def rollback_version(request: Request, engine: EngineDep, objective: Objective = "rating") -> dict:
    """Serve the newest ready version of the objective older than its active one."""
    return _swap(request, engine, lambda e: rollback(e, objective))
