"""Recommendations for a user, and the popularity list used for cold starts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import EngineDep, ModelDep, RecommenderDep
from api.errors import ServiceError
from api.schemas import PopularItem, Recommendations
from api.state import UnknownGenreError, popular, recommend
from recsys.data.catalog import read_user_ratings

router = APIRouter(tags=["recommendations"])

N = Annotated[int, Query(ge=1, le=500, description="How many items.")]
Genre = Annotated[str | None, Query(max_length=64, description="Only items of this genre.")]


@router.get("/users/{user_id}/recommendations", response_model=Recommendations)
async def user_recommendations(
    user_id: str,
    model: RecommenderDep,
    engine: EngineDep,
    response: Response,
    n: N = 10,
    exclude_seen: bool = True,
    genre: Genre = None,
    fallback: Annotated[Literal["none", "popular"], Query()] = "none",
) -> dict:
    """Top-n items for the user, best first, items they rated left out by default.

    They come from the active ranking model when there is one (else the rating
    model); ``model_version`` says which.

    Scoring runs on the event loop: it is a fraction of a millisecond of CPU, less
    than the hop to a worker thread would cost.

    A user the model has not seen gets 404, or with ``fallback=popular`` the most
    rated items they have not rated yet.
    """
    response.headers["X-Model-Version"] = str(model.version.id)
    try:
        if user_id in model.recommender.user_map:
            items = recommend(model, user_id, n, exclude_seen, genre)
            used_fallback = None
        elif fallback == "popular":
            rated = (
                set((await run_in_threadpool(read_user_ratings, engine, user_id))["item_id"])
                if exclude_seen
                else set()
            )
            items = [
                {**row, "score": float(row["n_ratings"]), "because_you_liked": None}
                for row in popular(model, n, genre, exclude=rated)
            ]
            used_fallback = "popular"
        else:
            raise ServiceError(
                404,
                "unknown_user",
                f"unknown user id {user_id!r}: the model has no ratings of theirs; "
                "pass fallback=popular for the most popular items",
            )
    except UnknownGenreError as error:
        raise ServiceError(422, "unknown_genre", str(error)) from None
    return {
        "user_id": user_id,
        "model_version": model.version.id,
        "fallback": used_fallback,
        "items": items,
    }


@router.get("/popular", response_model=list[PopularItem])
async def popular_items(model: ModelDep, n: N = 10, genre: Genre = None) -> list[dict]:
    """The most-rated items: what to show someone the model knows nothing about."""
    try:
        return popular(model, n, genre)
    except UnknownGenreError as error:
        raise ServiceError(422, "unknown_genre", str(error)) from None
