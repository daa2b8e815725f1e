"""DELETE a rating, an item, a user: through the real app on both databases, what each
leaves behind in the answers (the workers' side is tests/api/test_deletion_freshness.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from recsys.db.tables import deletions, items, ratings, users

KEY = {"X-API-Key": "s3cret"}


def listed(client: TestClient, user: str, **params: object) -> list[str]:
    response = client.get(f"/users/{user}/recommendations", params={"n": 50, **params})
    assert response.status_code == 200, response.text
    return [entry["item_id"] for entry in response.json()["items"]]


def rated_items(engine: Engine, user: str) -> set[str]:
    from recsys.data.catalog import read_user_ratings

    return set(read_user_ratings(engine, user)["item_id"])


def test_a_deleted_rating_is_unseen_again_and_a_later_rating_wins(
    keyed_client: TestClient, trained_engine: Engine
) -> None:
    item = sorted(rated_items(trained_engine, "u0"))[0]
    assert item not in listed(keyed_client, "u0")

    gone = keyed_client.delete(f"/users/u0/ratings/{item}", headers=KEY)
    assert gone.status_code == 200, gone.text
    assert gone.json() == {"user_id": "u0", "item_id": item, "deleted": True}
    assert item not in rated_items(trained_engine, "u0")
    assert item in listed(keyed_client, "u0")  # unseen again, at once in this worker
    again = keyed_client.delete(f"/users/u0/ratings/{item}", headers=KEY)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "unknown_rating"

    # Rated again after its deletion: the later write wins, here and in the database.
    body = {"ratings": [{"user_id": "u0", "item_id": item, "rating": 5}]}
    assert keyed_client.post("/ratings", json=body, headers=KEY).status_code == 200
    assert item in rated_items(trained_engine, "u0")
    assert item not in listed(keyed_client, "u0")


def test_an_erased_user_is_unknown_everywhere_and_no_ones_neighbour(
    keyed_client: TestClient, trained_engine: Engine
) -> None:
    assert keyed_client.get("/users/u1/similar", headers=KEY, params={"n": 50}).status_code == 200
    neighbours = keyed_client.get("/users/u3/similar", headers=KEY, params={"n": 50}).json()
    assert "u1" in {entry["user_id"] for entry in neighbours["users"]}

    erased = keyed_client.delete("/users/u1", headers=KEY)
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"user_id": "u1", "ratings_deleted": 19}
    with trained_engine.connect() as connection:
        assert (
            connection.execute(select(users.c.id).where(users.c.external_id == "u1")).first()
            is None
        )
        left = connection.execute(select(deletions.c.kind, deletions.c.user_id)).all()
    assert [tuple(row) for row in left] == [("user", "u1")]

    for method, path in (
        ("get", "/users/u1/recommendations"),
        ("get", "/users/u1"),
        ("get", "/users/u1/similar"),
        ("delete", "/users/u1"),
    ):
        response = keyed_client.request(method, path, headers=KEY)
        assert response.status_code == 404, (path, response.text)
    popular = keyed_client.get("/users/u1/recommendations", params={"fallback": "popular"})
    assert popular.json()["fallback"] == "popular"
    pairs = [{"user_id": "u1", "item_id": "i0"}]
    predicted = keyed_client.post("/predictions", json={"pairs": pairs})
    assert predicted.json()["predictions"][0]["baseline"] is True  # as any stranger
    strict = keyed_client.post("/predictions", json={"pairs": pairs, "unknown": "error"})
    assert strict.status_code == 404, strict.text
    neighbours = keyed_client.get("/users/u3/similar", headers=KEY, params={"n": 50}).json()
    assert "u1" not in {entry["user_id"] for entry in neighbours["users"]}
    assert len(neighbours["users"]) == 38  # everyone else


def test_a_deleted_item_is_never_recommended_predicted_or_listed(
    keyed_client: TestClient, trained_engine: Engine
) -> None:
    item = "i3"
    assert any(item in listed(keyed_client, f"u{u}", exclude_seen=False) for u in range(4))
    of_item = (
        select(func.count())
        .select_from(ratings.join(items, items.c.id == ratings.c.item_id))
        .where(items.c.external_id == item)
    )
    with trained_engine.connect() as connection:
        n_ratings = connection.execute(of_item).scalar_one()
    deleted = keyed_client.delete(f"/items/{item}", headers=KEY)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"item_id": item, "ratings_deleted": n_ratings}
    with trained_engine.connect() as connection:
        assert connection.execute(of_item).scalar_one() == 0
        assert (
            connection.execute(select(items.c.id).where(items.c.external_id == item)).first()
            is None
        )

    for user in range(4):
        assert item not in listed(keyed_client, f"u{user}", exclude_seen=False)
    for other in ("i0", "i5", "i12"):
        similar = keyed_client.get(f"/items/{other}/similar", params={"n": 50}).json()
        assert item not in {entry["item_id"] for entry in similar["items"]}
    assert keyed_client.get(f"/items/{item}/similar").status_code == 404
    popular = keyed_client.get("/popular", params={"n": 50}).json()
    assert len(popular) == 20
    assert item not in {entry["item_id"] for entry in popular}
    explorer = keyed_client.get("/explorer/items", params={"min_ratings": 0}).json()
    assert len(explorer["items"]) == 19
    assert item not in {e["item_id"] for e in explorer["items"]}
    pairs = [{"user_id": "u0", "item_id": item}]
    predicted = keyed_client.post("/predictions", json={"pairs": pairs})
    assert predicted.json()["predictions"][0]["baseline"] is True  # as any unknown item
    strict = keyed_client.post("/predictions", json={"pairs": pairs, "unknown": "error"})
    assert strict.status_code == 404, strict.text
    # Never a reason: u0 liked it, and the answer explains each item by a liked one.
    reasons = {
        entry["because_you_liked"]
        for user in ("u0", "u2")
        for entry in keyed_client.get(
            f"/users/{user}/recommendations", params={"n": 50, "exclude_seen": False}
        ).json()["items"]
    }
    assert "Comedy number 3" not in reasons
    assert len(reasons) > 3
    assert keyed_client.delete(f"/items/{item}", headers=KEY).status_code == 404


def test_deletion_routes_need_the_key(keyed_client: TestClient) -> None:
    for path in ("/users/u0/ratings/i0", "/items/i0", "/users/u0"):
        assert keyed_client.delete(path).status_code == 401
        assert keyed_client.delete(path, headers={"X-API-Key": "guess"}).status_code == 403
    assert len(listed(keyed_client, "u0", exclude_seen=False)) == 20  # nothing was deleted
