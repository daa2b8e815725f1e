"""User profiles: the metadata a hybrid model recommends from before any rating."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import ApiKeyDep, EngineDep, RolesDep, SettingsDep, StateDep
from api.errors import ServiceError
from api.schemas import PathId, SimilarUsers, UserErased, UserProfile, UserProfileOut
from recsys.data.catalog import read_user_profiles
from recsys.db.deletion import erase_users
from recsys.db.ingest import ingest
from recsys.db.sources import IngestError, from_frame

router = APIRouter(tags=["users"])


@router.put("/users/{user_id}", response_model=UserProfileOut, dependencies=[ApiKeyDep])
def put_user(user_id: PathId, body: UserProfile, engine: EngineDep, settings: SettingsDep) -> dict:
    """Create the user, or update the metadata fields given (fields left out keep their
    stored value, as re-ingesting a users file does).

    With a hybrid model active, a user with metadata and no ratings gets
    recommendations from it at once (``fallback: "metadata"``).
    """
    row = pd.DataFrame([{"user_id": user_id, **body.model_dump()}])
    try:
        report = ingest(engine, users_source=from_frame("request", row, settings.ingest_chunk_rows))
    except IngestError as error:
        raise ServiceError(422, "invalid_user", f"{error} (nothing was stored)") from None
    stored = _fields(read_user_profiles(engine, [user_id]).iloc[0])
    return {"user_id": user_id, **stored, "created": report.users_created == 1}


@router.get("/users/{user_id}", response_model=UserProfile, dependencies=[ApiKeyDep])
async def get_user(user_id: PathId, engine: EngineDep) -> dict:
    """The user's stored metadata (personal data: the API key, when the server has one);
    404 for a user the database does not hold."""
    profiles = await run_in_threadpool(read_user_profiles, engine, [user_id])
    if profiles.empty:
        raise ServiceError(404, "unknown_user", f"unknown user id {user_id!r}")
    return _fields(profiles.iloc[0])


@router.delete("/users/{user_id}", response_model=UserErased, dependencies=[ApiKeyDep])
def erase(user_id: PathId, engine: EngineDep, state: StateDep) -> dict:
    """Erase the user: their ratings and profile; 404 for an unknown user. They are
    answered as unknown from then on (recommendations, predictions, similar users,
    reasons): in this worker at once, in the others within a poll. Models trained before
    keep what they learned from them until the next training run
    (`recsys models forget` retrains now)."""
    report = erase_users(engine, [user_id])
    if report.users_erased == 0:
        raise ServiceError(404, "unknown_user", f"unknown user id {user_id!r}")
    state.follow_writes(engine)
    return {"user_id": user_id, "ratings_deleted": report.ratings_deleted}


@router.get("/users/{user_id}/similar", response_model=SimilarUsers, dependencies=[ApiKeyDep])
def similar_users(
    user_id: PathId, roles: RolesDep, n: Annotated[int, Query(ge=1, le=500)] = 10
) -> dict:
    """The users nearest to this one by cosine similarity of their vectors, from the
    recommending model, or the rating model when that one has no user vectors (EASE
    has none). Other users' ids are behavioural data: the API key, when set."""
    model = roles.user_vectors()
    nearest = model.recommender.similar_users(user_id, n)
    return {
        "user_id": user_id,
        "model_version": model.version.id,
        "users": [
            {"user_id": str(u), "score": float(s)}
            for u, s in zip(nearest.user_ids, nearest.scores, strict=True)
        ],
    }


def _fields(row: pd.Series) -> dict:
    """The stored profile as plain Python values (the database read gives numpy ones)."""
    values = row.astype(object).where(row.notna(), None)
    return {
        name: value.item() if isinstance(value, np.generic) else value
        for name, value in values[list(UserProfile.model_fields)].items()
    }
