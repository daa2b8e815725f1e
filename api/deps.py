"""Request dependencies: settings, engine, the loaded model, the API key check.

All are ``async``: they only read app state, and FastAPI would otherwise hop to its
thread pool for each of them on every request; the model dependencies read the app
state themselves rather than through ``get_state`` (one dependency fewer to solve on
every request).
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import Engine

from api.errors import ServiceError
from api.model_files import ModelFile
from api.model_swaps import ServiceState
from api.served_model import ServedModel
from recsys.serving.roles import ModelRoles
from recsys.settings import Settings
from recsys.tabular.tabular_learner import TabularPredictor
from recsys.vision.vision_learner import ImagePredictor


@dataclass(frozen=True)
class Probe:
    """What /ready asks the database with: an engine without a pool, and one thread."""

    engine: Engine
    thread: ThreadPoolExecutor


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


async def get_model(request: Request) -> ServedModel:
    """The model for item neighbours, explanations and the map (recsys.serving.roles)."""
    return request.app.state.service.roles.describing()


async def get_recommending_model(request: Request) -> ServedModel:
    """The model that recommends (recsys.serving.roles)."""
    return request.app.state.service.roles.recommending()


async def get_rating_model(request: Request) -> ServedModel:
    """The rating model (recsys.serving.roles); a ranking model's scores are no ratings."""
    return request.app.state.service.roles.rating()


async def get_roles(request: Request) -> ModelRoles[ServedModel]:
    return request.app.state.service.roles


async def get_tabular(request: Request) -> TabularPredictor:
    """The tabular model from its file; 503 until `recsys tabular train` wrote one."""
    holder: ModelFile[TabularPredictor] = request.app.state.tabular
    return holder.get()


async def get_vision(request: Request) -> ImagePredictor:
    """The image classifier from its file; 503 until `recsys vision train` wrote one."""
    holder: ModelFile[ImagePredictor] = request.app.state.vision
    return holder.get()


async def get_probe(request: Request) -> Probe:
    """/ready's own connection and thread (see api.main)."""
    return Probe(request.app.state.probe_engine, request.app.state.probe_thread)


# A security scheme, so OpenAPI and /docs ("Authorize") know which operations need it.
API_KEY = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,  # the one error shape below, not FastAPI's 403
    description="RECSYS_API_KEY. Writes, admin operations and reads of personal or "
    "operational data need it when the server has one.",
)


async def require_api_key(
    settings: Annotated[Settings, Depends(get_settings_dep)],
    key: Annotated[str | None, Security(API_KEY)] = None,
) -> None:
    """``X-API-Key`` when RECSYS_API_KEY is set: 401 without it, 403 if wrong."""
    if settings.api_key is None:
        return
    if not key:  # absent, or present and empty: never a key
        raise ServiceError(401, "missing_api_key", "this endpoint needs the X-API-Key header")
    # As bytes: compare_digest refuses str with non-ASCII characters (a 500 from anyone).
    if not secrets.compare_digest(key.encode(), settings.api_key.encode()):
        raise ServiceError(403, "wrong_api_key", "the X-API-Key header is not the right key")


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[Engine, Depends(get_engine)]
StateDep = Annotated[ServiceState, Depends(get_state)]
ModelDep = Annotated[ServedModel, Depends(get_model)]
RecommendingModelDep = Annotated[ServedModel, Depends(get_recommending_model)]
RatingModelDep = Annotated[ServedModel, Depends(get_rating_model)]
RolesDep = Annotated[ModelRoles[ServedModel], Depends(get_roles)]
TabularDep = Annotated[TabularPredictor, Depends(get_tabular)]
VisionDep = Annotated[ImagePredictor, Depends(get_vision)]
ProbeDep = Annotated[Probe, Depends(get_probe)]
ApiKeyDep = Depends(require_api_key)
