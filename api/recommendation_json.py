"""The recommendations body, written from JSON fragments built once per model load.

Recommendations are the hottest endpoint, and with the scoring down to a fraction of
a millisecond, building a dict per item and letting FastAPI validate and serialise
them was most of what a request cost. Each item's ``{"item_id":…,"title":…,
"genres":[…],"score":`` prefix and its title as a JSON string are encoded once when
the model loads; a request joins them with its scores. The body is the
``Recommendations`` schema (the route still declares it, so OpenAPI documents it),
and the tests parse every answer with that model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from fastapi import Response

from recsys.collab.recommender import TopItems
from recsys.serving.answers import Answer

if TYPE_CHECKING:  # the served model holds this module's fragments
    from api.served_model import ServedModel


def _encoded(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class ItemFragments:
    """Per model item: the JSON that starts its entry, and its title as a JSON value."""

    def __init__(
        self,
        item_ids: Sequence[object] | np.ndarray,
        titles: Sequence[str | None],
        genres: Sequence[list[str]],
    ) -> None:
        self.heads = [
            b'{"item_id":%s,"title":%s,"genres":%s,"score":'
            % (_encoded(str(item_id)), _encoded(title), _encoded(list(item_genres)))
            for item_id, title, item_genres in zip(item_ids, titles, genres, strict=True)
        ]
        self.titles = [_encoded(title) for title in titles]

    def items(self, top: TopItems, reasons: Sequence[int | None]) -> bytes:
        """The ranked items as a JSON array; ``reasons`` holds, per item, the model index
        of the liked item that explains it (None: no reason)."""
        return b"[%s]" % b",".join(
            b'%s%r,"because_you_liked":%s}'
            % (self.heads[index], score, b"null" if reason is None else self.titles[reason])
            for index, score, reason in zip(
                top.indices.tolist(), top.scores.tolist(), reasons, strict=True
            )
        )


def recommendations_response(
    user_id: str, version: int | None, fallback: str | None, items: bytes
) -> Response:
    """The whole body around an items array from :meth:`ItemFragments.items` (or any JSON
    array of the same shape), with the model version also in ``X-Model-Version``."""
    body = b'{"user_id":%s,"model_version":%s,"fallback":%s,"items":%s}' % (
        _encoded(user_id),
        _encoded(version),
        _encoded(fallback),
        items,
    )
    return Response(body, media_type="application/json", headers={"X-Model-Version": str(version)})


def answer_json(answer: Answer[ServedModel], user_id: str) -> bytes:
    """The answer's items as the body's JSON array: ranked model items with their titles,
    genres and (for a user the model knows) the liked item most like each one; popular
    items with their rating counts as scores."""
    if answer.popular is not None:
        return json.dumps(
            [
                {
                    "item_id": row["item_id"],
                    "title": row["title"],
                    "genres": row["genres"],
                    "score": float(row["n_ratings"]),
                    "because_you_liked": None,
                }
                for row in popular_rows(answer.popular)
            ]
        ).encode()
    assert answer.top is not None
    known = user_id if answer.how == "known" else None
    return with_reasons(answer.served, answer.top, known)


def with_reasons(model: ServedModel, top: TopItems, user_id: str | None = None) -> bytes:
    """The ranked items as JSON, with their titles and genres, and for a known user the
    liked item most like each one ("because you liked")."""
    reasons: list[int | None] = [None] * len(top.indices)
    if user_id is not None:
        for row, reason in enumerate(model.recommender.because_you_liked(user_id, top)):
            if len(reason.indices):
                reasons[row] = int(reason.indices[0])
    return model.fragments.items(top, reasons)


def popular_rows(frame: pd.DataFrame) -> list[dict]:
    """The catalog's popular rows as the PopularItem shape."""
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
