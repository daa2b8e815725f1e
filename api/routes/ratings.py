"""Feedback: new ratings, validated like the CLI's ingestion and stored all or nothing."""

from __future__ import annotations

import time
from typing import Annotated

import pandas as pd
from fastapi import APIRouter

from api.deps import ApiKeyDep, EngineDep, SettingsDep, StateDep
from api.errors import ServiceError
from api.json_body import documented, json_body
from api.metrics import FEEDBACK
from api.schemas import FeedbackRequest, FeedbackResult, PathId, RatingDeleted
from recsys.db.deletion import delete_ratings
from recsys.db.ingest import ingest
from recsys.db.sources import IngestError, from_frame

router = APIRouter(tags=["ratings"])


@router.post(
    "/ratings",
    response_model=FeedbackResult,
    dependencies=[ApiKeyDep],
    openapi_extra=documented(FeedbackRequest),
)
def add_ratings(
    body: Annotated[FeedbackRequest, json_body(FeedbackRequest)],
    engine: EngineDep,
    settings: SettingsDep,
    state: StateDep,
) -> dict:
    """Store a batch of ratings (all or nothing); the next training run uses them.

    They count at once as "seen" for users the model knows, so recommendations
    stop offering what the user just rated.
    """
    rows = pd.DataFrame([r.model_dump() for r in body.ratings])
    # A rating without a timestamp happened now.
    rows["timestamp"] = rows["timestamp"].fillna(int(time.time())).astype("int64")
    try:
        report = ingest(
            engine,
            from_frame("ratings", rows, chunk_rows=settings.ingest_chunk_rows),
            rating_range=(settings.rating_min, settings.rating_max),
        )
    except IngestError as error:
        raise ServiceError(422, "invalid_rating", f"{error} (nothing was stored)") from None
    state.follow_writes(engine)  # seen at once here, in write order (see the follower)
    FEEDBACK.labels("inserted").inc(report.ratings_inserted)
    FEEDBACK.labels("updated").inc(report.ratings_updated)
    return {
        "received": report.ratings_read,
        "inserted": report.ratings_inserted,
        "updated": report.ratings_updated,
        "users_created": report.users_created,
        "items_created": report.items_created,
    }


@router.delete(
    "/users/{user_id}/ratings/{item_id}", response_model=RatingDeleted, dependencies=[ApiKeyDep]
)
def delete_rating(
    user_id: PathId, item_id: PathId, engine: EngineDep, settings: SettingsDep, state: StateDep
) -> dict:
    """Take a rating back; 404 when there is none. The item counts as unseen again for
    that user: in this worker at once, in the others within a poll. A rating stored
    again later is there again (the later write wins)."""
    pair = pd.DataFrame({"user_id": [user_id], "item_id": [item_id]})
    report = delete_ratings(engine, from_frame("request", pair, settings.ingest_chunk_rows))
    if report.ratings_deleted == 0:
        raise ServiceError(
            404, "unknown_rating", f"user {user_id!r} has no rating of item {item_id!r}"
        )
    state.follow_writes(engine)
    FEEDBACK.labels("deleted").inc()
    return {"user_id": user_id, "item_id": item_id}
