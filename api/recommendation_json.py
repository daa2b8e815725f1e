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

from fastapi import Response

from recsys.collab.recommender import TopItems


def _encoded(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class ItemFragments:
    """Per model item: the JSON that starts its entry, and its title as a JSON value."""

    def __init__(
        self, item_ids: Sequence[object], titles: Sequence[str | None], genres: Sequence[list[str]]
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
