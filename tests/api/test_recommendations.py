"""Recommendations, popularity and cold starts through the real HTTP app."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import two_taste_groups


def test_a_known_user_gets_their_held_out_favourite_first_with_a_reason(client: TestClient) -> None:
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
        "message": "unknown user id 'stranger': the model has no ratings of theirs; "
        "pass fallback=popular for the most popular items",
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
