"""Model versions and the one being served."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from api.deps import EngineDep
from api.errors import ServiceError
from api.schemas import ModelVersionOut
from recsys.registry import active_version, list_versions

router = APIRouter(tags=["models"])


@router.get("/models", response_model=list[ModelVersionOut])
def models(engine: EngineDep) -> list[dict]:
    """Every training run, newest first, with its status and metrics."""
    return [asdict(v) for v in list_versions(engine)]


@router.get("/models/active", response_model=ModelVersionOut)
def active(engine: EngineDep) -> dict:
    """The version the service answers with."""
    version = active_version(engine)
    if version is None:
        raise ServiceError(404, "no_active_model", "no model version is active yet")
    return asdict(version)
