"""Recommendations, popularity and cold starts through the real HTTP app."""

from __future__ import annotations

import json

import numpy as np
from fastapi.testclient import TestClient

from api.recommendation_json import ItemFragments
from api.schemas import Recommendations
from recsys.collab.recommender import TopItems
from tests.factories import two_taste_groups


def test_a_known_user_gets_their_unseen_item_with_its_title_genres_and_a_reason(
    client: TestClient,
) -> None:
    """u0 rated 19 of the 20 items, so the one left is the answer whatever the model
    learned (tests/collab/test_contract.py checks what it learned): this checks what an
    answer carries."""
    _, held_out = two_taste_groups()
    response = client.get("/users/u0/recommendations", params={"n": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "u0"
    assert response.headers["X-Model-Version"] == str(body["model_version"])
    first = body["items"][0]
    assert first["item_id"] == held_out.loc[held_out["user_id"] == "u0", "item_id"].iloc[0]
    assert first["title"].startswith("Comedy number")
    assert first["because_you_liked"].startswith("Comedy number")
    assert first["genres"] == ["Comedy"]


def test_seen_items_are_left_out_unless_asked_for(client: TestClient) -> None:
    unseen = client.get("/users/u1/recommendations", params={"n": 50}).json()["items"]
    assert len(unseen) == 1  # u1 rated 19 of the 20 trained items
    everything = client.get(
        "/users/u1/recommendations", params={"n": 50, "exclude_seen": False}
    ).json()["items"]
    assert len(everything) == 20


def test_the_genre_filter_applies_before_the_cut(client: TestClient) -> None:
    body = client.get(
        "/users/u0/recommendations", params={"n": 5, "genre": "horror", "exclude_seen": False}
    ).json()
    assert len(body["items"]) == 5
    assert all(item["genres"] == ["Horror"] for item in body["items"])
    unknown = client.get("/users/u0/recommendations", params={"genre": "Western"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_genre"
    assert "Comedy, Drama, Horror" in unknown.json()["error"]["message"]


def test_unknown_users_get_404_or_the_popular_fallback(client: TestClient) -> None:
    missing = client.get("/users/stranger/recommendations")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "unknown_user",
        "message": "unknown user id 'stranger': the model has no ratings of theirs; ask for "
        "the popular fallback (fallback=popular, --fallback popular) for the most popular items",
    }
    fallback = client.get("/users/stranger/recommendations", params={"fallback": "popular", "n": 4})
    assert fallback.status_code == 200
    assert fallback.json()["fallback"] == "popular"
    assert len(fallback.json()["items"]) == 4


def test_popular_lists_the_most_rated_items(client: TestClient) -> None:
    items = client.get("/popular", params={"n": 30}).json()
    assert len(items) == 21
    counts = [item["n_ratings"] for item in items]
    assert counts == sorted(counts, reverse=True)
    assert items[-1]["item_id"] == "i20"
    assert items[-1]["n_ratings"] == 0


def test_bad_parameters_are_422_in_the_error_shape(client: TestClient) -> None:
    for params in ({"n": 0}, {"n": "many"}, {"fallback": "random"}):
        response = client.get("/users/u0/recommendations", params=params)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"


def test_every_answer_parses_as_the_documented_schema(client: TestClient) -> None:
    """The body is written from pre-encoded fragments, not by FastAPI: each kind of answer
    must still be exactly the Recommendations schema, titles with quotes included."""
    answers = [
        client.get("/users/u0/recommendations", params={"n": 3}),
        client.get("/users/u0/recommendations", params={"n": 3, "genre": "horror"}),
        client.get("/users/stranger/recommendations", params={"fallback": "popular"}),
        client.post("/users/anonymous/recommendations", json={"items": ["i0", "i1"], "n": 3}),
    ]
    for response in answers:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        parsed = Recommendations.model_validate_json(response.content)
        assert parsed.model_dump(mode="json") == response.json()  # no extra keys
        assert response.headers["X-Model-Version"] == str(parsed.model_version)
    assert [a.json()["fallback"] for a in answers] == [None, None, "popular", "fold_in"]


def test_fragments_encode_any_title() -> None:
    top = TopItems(np.array(['a"b', "é"], dtype=object), np.array([0.5, -1e-7]), np.arange(2))
    fragments = ItemFragments(['a"b', "é"], ['Say "hi"\n', None], [["Drama"], []])
    items = json.loads(fragments.items(top, [1, None]))
    assert items == [
        {"item_id": 'a"b', "title": 'Say "hi"\n', "genres": ["Drama"], "score": 0.5,
         "because_you_liked": None},
        {"item_id": "é", "title": None, "genres": [], "score": -1e-7,
         "because_you_liked": None},
    ]  # fmt: skip
    assert json.loads(fragments.items(top, [0, 0]))[0]["because_you_liked"] == 'Say "hi"\n'
