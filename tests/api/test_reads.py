"""The reads users of a recommendation service expect: paging, several genres, leaving
items out, hiding items from every list, creating items, and user-to-user neighbours."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api import served_model

ALL = {"exclude_seen": "false", "n": 20}


def ids(response: object) -> list[str]:
    body = response.json()  # type: ignore[attr-defined]
    entries = body["items"] if isinstance(body, dict) else body
    return [entry["item_id"] for entry in entries]


def test_pages_follow_each_other(client: TestClient) -> None:
    url = "/users/u0/recommendations"
    whole = ids(client.get(url, params={**ALL, "n": 10}))
    first = ids(client.get(url, params={**ALL, "n": 5}))
    second = ids(client.get(url, params={**ALL, "n": 5, "offset": 5}))
    assert first + second == whole
    last = ids(client.get(url, params=ALL))[-1]
    assert ids(client.get(url, params={**ALL, "offset": 19})) == [last]
    popular = ids(client.get("/popular", params={"n": 6}))
    assert ids(client.get("/popular", params={"n": 3, "offset": 3})) == popular[3:]
    assert client.get(url, params={"offset": -1}).status_code == 422


def test_genres_are_any_of_and_excluded_items_never_come_back(client: TestClient) -> None:
    url = "/users/u0/recommendations"
    comedies = ids(client.get(url, params={**ALL, "genre": "Comedy"}))
    assert len(comedies) == 10
    assert all(int(i[1:]) < 10 for i in comedies)
    both = ids(client.get(url, params=[*ALL.items(), ("genre", "comedy"), ("genre", "Horror")]))
    assert len(both) == 20
    left_out = ids(client.get(url, params=[*ALL.items(), ("exclude", "i1"), ("exclude", "i2")]))
    assert {"i1", "i2"}.isdisjoint(left_out)
    assert len(left_out) == 18
    popular = ids(
        client.get("/popular", params=[("n", 30), ("genre", "Horror"), ("genre", "Drama")])
    )
    assert set(popular) == {f"i{i}" for i in range(10, 21)}
    assert "i10" not in ids(client.get("/popular", params={"n": 30, "exclude": "i10"}))
    unknown = client.get(url, params=[("genre", "Comedy"), ("genre", "Opera")])
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_genre"


def test_genre_filters_kept_per_model_are_bounded(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each distinct set of genres a client sends costs a byte per item: the served model
    keeps only the most recent few, and the answers stay right after one is dropped."""
    monkeypatch.setattr(served_model, "GENRE_MASKS_KEPT", 2)
    url = "/users/u0/recommendations"
    sets = [["Comedy"], ["Horror"], ["Drama"], ["Comedy", "Horror"], ["Comedy"]]
    answers = [
        ids(client.get(url, params=[*ALL.items(), *(("genre", g) for g in s)])) for s in sets
    ]
    kept = client.app.state.service.roles.recommending()._genre_masks  # type: ignore[attr-defined]
    assert len(kept) == 2
    assert answers[-1] == answers[0]  # built again, the same
    assert len(answers[3]) == 20


def test_a_hidden_item_leaves_every_list_and_comes_back_when_shown(client: TestClient) -> None:
    def everywhere() -> list[list[str]]:
        explorer = client.get("/explorer/items", params={"min_ratings": 0, "limit": 100}).json()
        return [
            ids(client.get("/users/u0/recommendations", params=ALL)),
            ids(client.get("/items/i4/similar", params={"n": 19})),
            ids(client.get("/popular", params={"n": 30})),
            [item["item_id"] for item in explorer["items"]],
        ]

    assert all("i3" in listed for listed in everywhere())
    hidden = client.patch("/items/i3", json={"hidden": True})
    assert hidden.status_code == 200
    assert hidden.json() == {"item_id": "i3", "hidden": True}
    assert not any("i3" in listed for listed in everywhere())
    assert client.patch("/items/i3", json={"hidden": False}).status_code == 200
    assert all("i3" in listed for listed in everywhere())
    missing = client.patch("/items/nope", json={"hidden": True})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_item"


def test_items_are_created_and_updated_before_their_first_rating(client: TestClient) -> None:
    created = client.put(
        "/items/new-1",
        json={"title": "A New Film", "genres": ["Drama", "Comedy"], "release_date": "2026-11-30"},
    )
    assert created.status_code == 200, created.text
    assert created.json() == {
        "item_id": "new-1",
        "title": "A New Film",
        "genres": ["Drama", "Comedy"],
        "release_date": "2026-11-30",
        "hidden": False,
        "created": True,
    }
    updated = client.put("/items/new-1", json={"title": "A Renamed Film"}).json()
    assert updated["title"] == "A Renamed Film"
    assert updated["genres"] == ["Drama", "Comedy"]  # left out: kept
    assert updated["created"] is False
    assert client.put("/items/new-1", json={"release_date": "soon"}).status_code == 422
    assert client.put("/items/%20", json={}).status_code == 422
    assert client.patch("/items/new-1", json={"hidden": True}).status_code == 200


def test_users_nearest_to_a_user_share_their_taste(client: TestClient) -> None:
    body = client.get("/users/u0/similar", params={"n": 5}).json()
    neighbours = [entry["user_id"] for entry in body["users"]]
    assert len(neighbours) == 5
    assert "u0" not in neighbours
    assert all(int(user[1:]) % 2 == 0 for user in neighbours)  # the same taste group
    missing = client.get("/users/nobody/similar")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_user"
