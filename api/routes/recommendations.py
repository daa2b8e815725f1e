"""Recommendations for a user, and the popularity list used for cold starts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from api.deps import ModelDep, RecommendingModelDep
from api.errors import ServiceError
from api.metrics import FOLD_INS
from api.model_swaps import ServiceState
from api.recommendation_json import recommendations_response
from api.schemas import PathId, PopularItem, QueryId, Recommendations, SessionRequest
from api.served_model import ServedModel
from recsys.collab.recommender import TopItems
from recsys.data.catalog import UnknownGenreError, read_user_profiles, read_user_ratings

router = APIRouter(tags=["recommendations"])

# 200 ids of 255 ASCII characters make a 53 KB URL: under the 64 KiB that `recsys serve`
# reads (RECSYS_MAX_HEAD_BYTES) and the HTTP parser's 65,535-byte bound on a URL.
MAX_EXCLUDED = 200
N = Annotated[int, Query(ge=1, le=500, description="How many items.")]
Offset = Annotated[
    int, Query(ge=0, le=10_000, description="Skip the best `offset` (the next page: offset + n).")
]
Genres = Annotated[
    list[Annotated[str, Query(max_length=64)]] | None,
    Query(max_length=20, description="Only items of any of these genres (repeat the parameter)."),
]
Exclude = Annotated[
    list[QueryId] | None,
    Query(
        max_length=MAX_EXCLUDED,
        description=f"Item ids to leave out (repeat the parameter; at most {MAX_EXCLUDED}: "
        "as many ASCII ids of the longest length fit in the 64 KiB a request line may take).",
    ),
]


@dataclass(frozen=True)
class Page:
    """Which part of a ranked list a request wants."""

    n: int
    offset: int = 0
    genres: Sequence[str] = ()
    exclude: Sequence[str] = ()


@router.get("/users/{user_id}/recommendations", response_model=Recommendations)
async def user_recommendations(
    user_id: PathId,
    model: RecommendingModelDep,
    request: Request,
    n: N = 10,
    offset: Offset = 0,
    exclude_seen: bool = True,
    genre: Genres = None,
    exclude: Exclude = None,
    fallback: Annotated[Literal["none", "popular"], Query()] = "none",
) -> Response:
    """Top-n items for the user, best first, items they rated left out by default.

    They come from the active ranking model when there is one (else the rating
    model); ``model_version`` says which.

    Scoring runs on the event loop: it is a fraction of a millisecond of CPU, less
    than the hop to a worker thread would cost.

    A user the model has not seen but who has rated items it knows is folded in: a
    vector fitted to their ratings against the fixed model, computed again only when
    their ratings change (``fallback: "fold_in"``). Without such ratings, a model that
    reads metadata answers from their profile (``PUT /users/{user_id}``) when one is
    loaded (``fallback: "metadata"``); otherwise 404, or with ``fallback=popular`` the
    most rated items they have not rated yet.
    """
    page = Page(n, offset, genre or (), exclude or ())
    try:
        if user_id in model.recommender.user_map:
            top = model.recommender.recommend_many(
                [user_id],
                n,
                exclude_seen,
                exclude=page.exclude,
                allowed=model.genre_mask(page.genres),
                offset=offset,
            )[0]
            items, used_fallback = described(model, top, user_id), None
        else:
            items, used_fallback, model = await unknown_user(
                user_id, model, request.app.state.engine, request.app.state.service,
                page, exclude_seen, fallback,
            )  # fmt: skip
    except UnknownGenreError as error:
        raise ServiceError(422, "unknown_genre", str(error)) from None
    return recommendations_response(user_id, model.version.id, used_fallback, items)


async def unknown_user(
    user_id: str,
    model: ServedModel,
    engine: Engine,
    state: ServiceState,
    page: Page,
    exclude_seen: bool,
    fallback: str,
) -> tuple[bytes, str, ServedModel]:
    """A user the model never saw: folded in from their ratings in the database when they
    have some of items it knows, else from their profile by a model that reads metadata,
    else the popularity list when asked for; 404 otherwise."""
    rated = await run_in_threadpool(read_user_ratings, engine, user_id)
    mask = model.genre_mask(page.genres)
    if rated["item_id"].isin(model.recommender.item_map.ids).any():
        top = await run_in_threadpool(
            partial(
                model.recommender.recommend_from_ratings,
                rated,
                page.n,
                exclude=page.exclude,
                allowed=mask,
                offset=page.offset,
            )
        )
        FOLD_INS.inc()
        return described(model, top), "fold_in", model
    seen = set(rated["item_id"]) if exclude_seen else set()
    seen |= set(page.exclude)
    profile = None
    if state.metadata_model is not None:
        profile = await run_in_threadpool(known_profile, engine, user_id)
    if profile is not None:
        model = state.metadata_model  # type: ignore[assignment]
        top = model.recommender.recommend_for_profile(
            profile, page.n, exclude=seen, allowed=model.genre_mask(page.genres), offset=page.offset
        )
        return described(model, top), "metadata", model
    if fallback == "popular":
        rows = await run_in_threadpool(popular_rows, model, replace(page, exclude=tuple(seen)))
        items = [
            {
                "item_id": row["item_id"],
                "title": row["title"],
                "genres": row["genres"],
                "score": float(row["n_ratings"]),
                "because_you_liked": None,
            }
            for row in rows
        ]
        return json.dumps(items).encode(), "popular", model
    raise ServiceError(
        404,
        "unknown_user",
        f"unknown user id {user_id!r}: the model has no ratings of theirs; "
        "pass fallback=popular for the most popular items",
    )


@router.post("/users/{user_id}/recommendations", response_model=Recommendations)
async def session_recommendations(
    user_id: PathId, body: SessionRequest, model: RecommendingModelDep
) -> Response:
    """Recommendations for an anonymous session ("people who just looked at these"): the
    given items are folded in as the session's interactions and left out of the answer.
    Nothing is stored; ``user_id`` only labels the answer."""
    session = pd.DataFrame({"item_id": body.items, "rating": 5.0})
    if not session["item_id"].isin(model.recommender.item_map.ids).any():
        raise ServiceError(
            422, "unknown_items", "none of the items is known to the model: nothing to go on"
        )
    try:
        mask = model.genre_mask([body.genre] if body.genre else None)
    except UnknownGenreError as error:
        raise ServiceError(422, "unknown_genre", str(error)) from None
    top = await run_in_threadpool(
        partial(model.recommender.recommend_from_ratings, session, body.n, allowed=mask)
    )
    FOLD_INS.inc()
    return recommendations_response(user_id, model.version.id, "fold_in", described(model, top))


def described(model: ServedModel, top: TopItems, user_id: str | None = None) -> bytes:
    """The ranked items as JSON, with their titles and genres, and for a known user the
    liked item most like each one ("because you liked")."""
    reasons: list[int | None] = [None] * len(top.indices)
    if user_id is not None:
        for row, reason in enumerate(model.recommender.because_you_liked(user_id, top.item_ids)):
            if len(reason.indices):
                reasons[row] = int(reason.indices[0])
    return model.fragments.items(top, reasons)


def known_profile(engine: Engine, user_id: str) -> dict | None:
    """The user's stored metadata, or None when there is none to recommend from."""
    profiles = read_user_profiles(engine, [user_id])
    if profiles.empty:
        return None
    profile = {k: v for k, v in profiles.iloc[0].drop("user_id").items() if pd.notna(v)}
    return profile or None


def popular_rows(model: ServedModel, page: Page) -> list[dict]:
    frame = model.catalog.popular(page.n, page.genres, page.exclude, page.offset)
    return [
        {
            "item_id": row.item_id,
            "title": row.title if isinstance(row.title, str) else None,
            "genres": row.genres,
            "n_ratings": int(row.n_ratings),
            "mean_rating": None if pd.isna(row.mean_rating) else float(row.mean_rating),
        }
        for row in frame.itertuples()
    ]


@router.get("/popular", response_model=list[PopularItem])
def popular_items(
    model: ModelDep,
    n: N = 10,
    offset: Offset = 0,
    genre: Genres = None,
    exclude: Exclude = None,
) -> list[dict]:
    """The most-rated items: what to show someone the model knows nothing about.

    Precomputed order and genre masks; in a worker thread, off the event loop."""
    try:
        return popular_rows(model, Page(n, offset, genre or (), exclude or ()))
    except UnknownGenreError as error:
        raise ServiceError(422, "unknown_genre", str(error)) from None
