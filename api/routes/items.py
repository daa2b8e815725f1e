"""Similar items and rating predictions."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import ApiKeyDep, EngineDep, ModelDep, RatingModelDep, SettingsDep, StateDep
from api.errors import ServiceError
from api.json_body import documented, json_body
from api.schemas import (
    ItemDeleted,
    ItemIn,
    ItemOut,
    ItemVisibility,
    ItemVisibilityOut,
    PathId,
    PredictionRequest,
    Predictions,
    SimilarItems,
)
from recsys.data.catalog import read_item
from recsys.db.deletion import delete_item
from recsys.db.ingest import ingest
from recsys.db.item_visibility import set_hidden
from recsys.db.sources import IngestError, from_frame
from recsys.serving.predictions import predict_ratings

router = APIRouter(tags=["items"])


@router.get("/items/{item_id}/similar", response_model=SimilarItems)
async def similar(
    item_id: PathId,
    model: ModelDep,
    n: Annotated[int, Query(ge=1, le=500)] = 10,
    min_ratings: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """Nearest items by cosine similarity of embeddings (the item itself excluded);
    ``min_ratings`` leaves out neighbours with fewer ratings."""
    if item_id not in model.recommender.item_map:
        raise ServiceError(
            404,
            "unknown_item",
            f"item {item_id!r} has no ratings the model was trained on"
            if item_id in model.catalog
            else f"unknown item id {item_id!r}",
        )
    neighbours = model.recommender.similar_items(item_id, n, min_ratings)
    catalog = model.catalog
    return {
        "item_id": item_id,
        "title": catalog.title(item_id),
        "model_version": model.version.id,
        "items": [
            {"item_id": str(i), "title": catalog.title(i), "score": float(s)}
            for i, s in zip(neighbours.item_ids, neighbours.scores, strict=True)
        ],
    }


@router.put("/items/{item_id}", response_model=ItemOut, dependencies=[ApiKeyDep])
def put_item(item_id: PathId, body: ItemIn, engine: EngineDep, settings: SettingsDep) -> dict:
    """Create the item, or update the fields given (fields left out keep their stored
    value, as re-ingesting an items file does): a new item exists before its first
    rating. Models learn it at their next training run."""
    release = body.release_date.isoformat() if body.release_date else None
    row = pd.DataFrame(
        [{"item_id": item_id, "title": body.title, "genres": body.genres, "release_date": release}]
    )
    try:
        report = ingest(engine, items_source=from_frame("request", row, settings.ingest_chunk_rows))
    except IngestError as error:
        raise ServiceError(422, "invalid_item", f"{error} (nothing was stored)") from None
    stored = read_item(engine, item_id)
    assert stored is not None  # just written
    return {"item_id": item_id, **stored, "created": report.items_created == 1}


@router.patch("/items/{item_id}", response_model=ItemVisibilityOut, dependencies=[ApiKeyDep])
def patch_item(item_id: PathId, body: ItemVisibility, engine: EngineDep, state: StateDep) -> dict:
    """Hide an item from every answer (or show it again); 404 for an unknown item.

    This worker applies it at once, the others at their next poll (half a second)."""
    if not set_hidden(engine, item_id, body.hidden):
        raise ServiceError(404, "unknown_item", f"unknown item id {item_id!r}")
    state.follow_hidden(engine)
    return {"item_id": item_id, "hidden": body.hidden}


@router.delete("/items/{item_id}", response_model=ItemDeleted, dependencies=[ApiKeyDep])
def remove_item(item_id: PathId, engine: EngineDep, state: StateDep) -> dict:
    """Delete the item and every rating of it; 404 for an unknown item. No answer names
    it again (recommendations, similar items, popular, the explorer, predictions): in this
    worker at once, in the others within a poll. To stop recommending an item but keep
    learning from its ratings, hide it (PATCH) instead."""
    report = delete_item(engine, item_id)
    if report is None:
        raise ServiceError(404, "unknown_item", f"unknown item id {item_id!r}")
    state.follow_writes(engine)
    return {"item_id": item_id, "ratings_deleted": report.ratings_deleted}


@router.post(
    "/predictions", response_model=Predictions, openapi_extra=documented(PredictionRequest)
)
async def predictions(
    body: Annotated[PredictionRequest, json_body(PredictionRequest)],
    model: RatingModelDep,
    engine: EngineDep,
) -> dict:
    """Predicted ratings for (user, item) pairs, in the order given (from the rating model).

    A rating model that reads metadata also predicts for users and items it never
    saw, from the metadata the database holds for them. Other pairs with an id the
    model never saw get the baseline (global mean plus the known side's offset),
    flagged `baseline: true`, or a 404 with `unknown: "error"`.
    """
    pairs = pd.DataFrame([p.model_dump() for p in body.pairs])
    predicted = await run_in_threadpool(
        predict_ratings, model.recommender, engine, pairs, body.unknown
    )
    return {
        "model_version": model.version.id,
        "predictions": [
            {**pair, "rating": float(rating), "baseline": bool(baseline)}
            for pair, rating, baseline in zip(
                pairs.to_dict("records"), predicted.ratings, predicted.baseline, strict=True
            )
        ],
    }
