"""What a user gets: one answer for every kind of user, for the API, the CLI and the
notebook alike.

- a user the recommending model knows: their ranked items (``known``);
- a user it never saw who has rated items it knows (rated after training, say): a
  vector folded in from those ratings (``fold_in``);
- otherwise, with a model that reads metadata active and a profile stored for them:
  that model's answer for the profile (``metadata``);
- otherwise, when asked for: the most rated items (``popular``, :func:`popular_items`);
- otherwise UnknownUserError.

``exclude_seen`` leaves out what the user rated on every path; ``page`` says which part of
the list (``n`` from ``offset``), which genres (any of) and which items to leave out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Generic, Literal, Protocol, TypeVar

import pandas as pd
import torch
from sqlalchemy import Engine

from recsys.collab.recommender import TopItems
from recsys.collab.top_k import finite_rows, top_k
from recsys.data.catalog import ItemCatalog, read_user_profiles, read_user_ratings
from recsys.data.ids import UnknownIdError
from recsys.serving.roles import ModelRoles, Served

How = Literal["known", "fold_in", "metadata", "popular"]
Fallback = Literal["none", "popular"]


class Answering(Served, Protocol):
    """A served model that can answer users: with its catalog and genre filters."""

    catalog: ItemCatalog

    def genre_mask(self, genres: Sequence[str] | None) -> torch.Tensor | None: ...


A = TypeVar("A", bound=Answering)


class UnknownUserError(UnknownIdError):
    """A user with no ratings the model knows and no profile, and no fallback asked for."""

    def __init__(self, user_id: object) -> None:
        super().__init__("user", user_id)
        self.args = (
            f"unknown user id {user_id!r}: the model has no ratings of theirs; ask for the "
            "popular fallback (fallback=popular, --fallback popular) for the most popular items",
        )


@dataclass(frozen=True)
class Page:
    """Which part of a ranked list a request wants."""

    n: int = 10
    offset: int = 0
    genres: Sequence[str] = ()
    exclude: Sequence[str] = ()


@dataclass(frozen=True)
class Answer(Generic[A]):
    """A user's items and how they were found: ``top`` holds the ranked model items
    (known, fold_in, metadata); ``popular`` the catalog's rows, most rated first (it lists
    items no model saw too). ``served`` is the model that answered."""

    served: A
    how: How
    top: TopItems | None = None
    popular: pd.DataFrame | None = None


class UnknownSessionItemsError(ValueError):
    """A session none of whose items the recommending model knows: nothing to go on."""


def answer_for_session(
    roles: ModelRoles[A], item_ids: Sequence[str], page: Page = Page()
) -> Answer[A]:
    """For an anonymous session ("people who just looked at these"): the items are folded
    in as the session's interactions and left out of the answer (``fold_in``)."""
    served = roles.recommending()
    recommender = served.recommender
    session = pd.DataFrame({"item_id": list(item_ids), "rating": 5.0})
    if not (recommender.item_map.positions(session["item_id"]) >= 0).any():
        raise UnknownSessionItemsError("none of the items is known to the model: nothing to go on")
    top = recommender.recommend_from_ratings(
        session, page.n, page.exclude, served.genre_mask(page.genres), page.offset
    )
    return Answer(served, "fold_in", top)


def knows(roles: ModelRoles[A], user_id: str) -> bool:
    """Whether the recommending model knows ``user_id``: its answer needs no database."""
    return user_id in roles.recommending().recommender.user_map


def answer_for_user(
    roles: ModelRoles[A],
    engine: Engine,
    user_id: str,
    page: Page = Page(),
    exclude_seen: bool = True,
    fallback: Fallback = "none",
) -> Answer[A]:
    """The user's answer (see the module docstring); UnknownGenreError for a genre no item
    has, UnknownUserError for a stranger without the popular fallback."""
    served = roles.recommending()
    recommender = served.recommender
    mask = served.genre_mask(page.genres)
    if user_id in recommender.user_map:
        top = recommender.recommend_many(
            [user_id], page.n, exclude_seen, page.exclude, mask, page.offset
        )[0]
        return Answer(served, "known", top)
    rated = read_user_ratings(engine, user_id)
    if (recommender.item_map.positions(rated["item_id"]) >= 0).any():
        top = recommender.recommend_from_ratings(
            rated, page.n, page.exclude, mask, page.offset, exclude_seen
        )
        return Answer(served, "fold_in", top)
    left_out = (set(rated["item_id"]) if exclude_seen else set()) | set(page.exclude)
    describing = roles.metadata()
    profile = _profile(engine, user_id) if describing is not None else None
    if describing is not None and profile is not None:
        top = describing.recommender.recommend_for_profile(
            profile, page.n, left_out, describing.genre_mask(page.genres), page.offset
        )
        return Answer(describing, "metadata", top)
    if fallback == "popular":
        rows = popular_items(served.catalog, replace(page, exclude=sorted(left_out)))
        return Answer(served, "popular", popular=rows)
    raise UnknownUserError(user_id)


def popular_items(catalog: ItemCatalog, page: Page) -> pd.DataFrame:
    """The most rated items, catalog items no model saw included (``by_popularity``: item_id,
    title, genres, n_ratings, mean_rating), ranked by the one top_k like every answer:
    their popularity order as scores, genres and hidden items as its mask, ``page.exclude``
    as its exclusions, ``page.offset`` and ``page.n`` as its page."""
    ordered = catalog.by_popularity
    if ordered.empty:
        return ordered
    scores = torch.arange(len(ordered), 0, -1, dtype=torch.float32)[None]
    allowed = torch.from_numpy(catalog.popular_mask(page.genres))
    excluded = catalog.popular_positions(page.exclude)
    values, positions = top_k(scores, page.offset + page.n, None, excluded, allowed)
    ((rows, _),) = finite_rows(values, positions)
    return ordered.iloc[rows[page.offset :]].reset_index(drop=True)


def _profile(engine: Engine, user_id: str) -> dict[str, object] | None:
    """The user's stored metadata, or None when there is none to recommend from."""
    profiles = read_user_profiles(engine, [user_id])
    if profiles.empty:
        return None
    profile = {k: v for k, v in profiles.iloc[0].drop("user_id").items() if pd.notna(v)}
    return profile or None
