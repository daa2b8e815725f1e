"""Request dependencies: settings, engine, the loaded model, the API key check.

All are ``async``: they only read app state, and FastAPI would otherwise hop to its
thread pool for each of them on every request; the model dependencies read the app
state themselves rather than through ``get_state`` (one dependency fewer to solve on
every request).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import Engine

from api.errors import ServiceError
from api.model_swaps import ServiceState
from api.served_model import ServedModel
from recsys.settings import Settings


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


async def get_model(request: Request) -> ServedModel:
    """The rating model (else the ranking one); 503 until one has been trained."""
    state: ServiceState = request.app.state.service
    if state.model is None:
        raise ServiceError(503, "no_model", "no model is active yet: run `recsys train`")
    return state.model


async def get_recommending_model(request: Request) -> ServedModel:
    """The model that recommends (see ServiceState.recommending); 503 until one is trained."""
    state: ServiceState = request.app.state.service
    if state.recommending is None:
        raise ServiceError(503, "no_model", "no model is active yet: run `recsys train`")
    return state.recommending


async def get_rating_model(request: Request) -> ServedModel:
    """The rating model; 503 when the active one could not be loaded, 409 when only a
    ranking model is active (its scores are no ratings)."""
    state: ServiceState = request.app.state.service
    if "rating" in state.models:
        return state.models["rating"]
    if "rating" in state.broken:  # active, but its weights would not load
        version_id, error = state.broken["rating"]
        raise ServiceError(
            503,
            "model_unavailable",
            f"the active rating model, version {version_id}, could not be loaded ({error}): "
            "retrain or activate another version",
        )
    if state.models:
        raise ServiceError(
            409,
            "no_rating_model",
            "only a ranking model is active and its scores are not ratings: "
            "train one with `recsys train --objective rating`",
        )
    raise ServiceError(503, "no_model", "no model is active yet: run `recsys train`")


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
ApiKeyDep = Depends(require_api_key)
