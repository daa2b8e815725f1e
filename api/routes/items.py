"""Similar items and rating predictions."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query

from api.deps import ModelDep, RatingModelDep
from api.errors import ServiceError
from api.schemas import PredictionRequest, Predictions, SimilarItems
from api.state import title_or_none
from recsys.data.ratings import UnknownIdError

router = APIRouter(tags=["items"])


@router.get("/items/{item_id}/similar", response_model=SimilarItems)
async def similar(
    item_id: str,
    model: ModelDep,
    n: Annotated[int, Query(ge=1, le=500)] = 10,
    min_ratings: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """Nearest items by cosine similarity of embeddings (the item itself excluded)."""
    if item_id not in model.recommender.item_map:
        known = item_id in model.catalog.index
        raise ServiceError(
            404,
            "unknown_item",
            f"item {item_id!r} has no ratings the model was trained on"
            if known
            else f"unknown item id {item_id!r}",
        )
    neighbours = model.recommender.similar_items(item_id, len(model.recommender.item_map))
    neighbours["item_id"] = neighbours["item_id"].astype(str)
    counts = model.catalog["n_ratings"]
    if min_ratings:
        neighbours = neighbours[neighbours["item_id"].map(counts).fillna(0) >= min_ratings]
    neighbours = neighbours.head(n)
    titles = model.catalog["title"]
    return {
        "item_id": item_id,
        "title": title_or_none(titles.get(item_id)),
        "model_version": model.version.id,
        "items": [
            {"item_id": i, "title": title_or_none(titles.get(i)), "score": float(s)}
            for i, s in zip(neighbours["item_id"], neighbours["score"], strict=True)
        ],
    }


@router.post("/predictions", response_model=Predictions)
async def predictions(body: PredictionRequest, model: RatingModelDep) -> dict:
    """Predicted ratings for (user, item) pairs, in the order given (from the rating model)."""
    pairs = pd.DataFrame([p.model_dump() for p in body.pairs])
    try:
        ratings = model.recommender.predict(pairs)
    except UnknownIdError as error:
        raise ServiceError(404, f"unknown_{error.kind}", str(error)) from None
    return {
        "model_version": model.version.id,
        "predictions": [
            {**pair, "rating": float(r)}
            for pair, r in zip(pairs.to_dict("records"), ratings, strict=True)
        ],
    }
