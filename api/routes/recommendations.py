"""Recommendations for a user, and the popularity list used for cold starts."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import EngineDep, ModelDep, RolesDep
from api.metrics import FOLD_INS
from api.recommendation_json import answer_json, popular_rows, recommendations_response
from api.schemas import PathId, PopularItem, QueryId, Recommendations, SessionRequest
from recsys.serving.answers import (
    Fallback,
    Page,
    answer_for_session,
    answer_for_user,
    knows,
    popular_items,
)

router = APIRouter(tags=["recommendations"])

# 200 ids of 255 ASCII characters make a 53 KB URL: under the 64 KiB that `recsys serve`
# reads (RECSYS_MAX_HEAD_BYTES) and the HTTP parser's 65,535-byte bound on a URL.
MAX_EXCLUDED = 200
HowMany = Annotated[int, Query(ge=1, le=500, description="How many items.")]
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


@router.get("/users/{user_id}/recommendations", response_model=Recommendations)
async def user_recommendations(
    user_id: PathId,
    roles: RolesDep,
    engine: EngineDep,
    n: HowMany = 10,
    offset: Offset = 0,
    exclude_seen: bool = True,
    genre: Genres = None,
    exclude: Exclude = None,
    fallback: Annotated[Fallback, Query()] = "none",
) -> Response:
    """Top-n items for the user, best first, items they rated left out by default.

    They come from the active ranking model when there is one (else the rating
    model); ``model_version`` says which.

    A user the model has not seen but who has rated items it knows is folded in: a
    vector fitted to their ratings against the fixed model, computed again only when
    their ratings change (``fallback: "fold_in"``). Without such ratings, a model that
    reads metadata answers from their profile (``PUT /users/{user_id}``) when one is
    loaded (``fallback: "metadata"``); otherwise 404, or with ``fallback=popular`` the
    most rated items they have not rated yet. The rule is the library's
    (recsys.serving.answers), as `recsys recommend` applies it.

    A known user is answered on the event loop (a fraction of a millisecond of CPU,
    less than the hop to a worker thread); a stranger's ratings and profile are read
    from the database in a worker thread.
    """
    page = Page(n, offset, genre or (), exclude or ())
    ask = partial(answer_for_user, roles, engine, user_id, page, exclude_seen, fallback)
    answer = ask() if knows(roles, user_id) else await run_in_threadpool(ask)
    if answer.how == "fold_in":
        FOLD_INS.inc()
    version = answer.served.version.id
    shown = None if answer.how == "known" else answer.how  # the body's "fallback"
    return recommendations_response(user_id, version, shown, answer_json(answer, user_id))


@router.post("/users/{user_id}/recommendations", response_model=Recommendations)
async def session_recommendations(
    user_id: PathId, body: SessionRequest, roles: RolesDep
) -> Response:
    """Recommendations for an anonymous session ("people who just looked at these"): the
    given items are folded in as the session's interactions and left out of the answer.
    Nothing is stored; ``user_id`` only labels the answer."""
    genres = [body.genre] if body.genre else ()
    ask = partial(answer_for_session, roles, body.items, Page(body.n, genres=genres))
    answer = await run_in_threadpool(ask)
    FOLD_INS.inc()
    version = answer.served.version.id
    return recommendations_response(user_id, version, "fold_in", answer_json(answer, user_id))


@router.get("/popular", response_model=list[PopularItem])
def popular(
    model: ModelDep,
    n: HowMany = 10,
    offset: Offset = 0,
    genre: Genres = None,
    exclude: Exclude = None,
) -> list[dict]:
    """The most-rated items: what to show someone the model knows nothing about.

    Precomputed order and genre masks; in a worker thread, off the event loop."""
    return popular_rows(popular_items(model.catalog, Page(n, offset, genre or (), exclude or ())))
