"""Model versions and the one being served."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import Engine

from api.deps import ApiKeyDep, EngineDep, StateDep
from api.errors import ServiceError
from api.model_swaps import ServiceState
from api.schemas import ModelVersionOut
from recsys.jobs.model_versions import (
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


def _swap(state: ServiceState, engine: Engine, change: Callable[[Engine], ModelVersion]) -> dict:
    """Activate (or roll back), then serve it in this worker now; the others poll. An
    ActivationError is answered by its class (api.errors)."""
    version = change(engine)
    state.follow_registry(engine)
    return asdict(version)


@router.post("/models/{version_id}/activate", response_model=ModelVersionOut)
def activate_version(
    version_id: Annotated[int, Path(ge=1, le=2**63 - 1)], state: StateDep, engine: EngineDep
) -> dict:
    """Serve this version for its objective from now on (its weights are checked first)."""
    return _swap(state, engine, lambda e: activate(e, version_id))


@router.post("/models/rollback", response_model=ModelVersionOut)
def rollback_version(state: StateDep, engine: EngineDep, objective: Objective = "rating") -> dict:
    """Serve the newest ready version of the objective older than its active one."""
    return _swap(state, engine, lambda e: rollback(e, objective))
