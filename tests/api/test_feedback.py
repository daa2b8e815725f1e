"""Feedback ingestion: validated, all or nothing, protected by the API key."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from recsys.db.tables import ratings
from recsys.settings import Settings


def count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(ratings)).scalar_one()


def test_new_ratings_are_stored_and_count_as_seen_at_once(
    client: TestClient, trained_engine: Engine
) -> None:
    before = client.get("/users/u1/recommendations", params={"n": 1}).json()["items"]
    assert len(before) == 1
    response = client.post(
        "/ratings",
        json={
            "ratings": [
                {"user_id": "u1", "item_id": before[0]["item_id"], "rating": 5},
                {"user_id": "newcomer", "item_id": "i3", "rating": 4.5, "timestamp": 1_700_000_000},
            ]
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "received": 2,
        "inserted": 2,
        "updated": 0,
        "users_created": 1,
        "items_created": 0,
    }
    assert client.get("/users/u1/recommendations", params={"n": 1}).json()["items"] == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"user_id": "u1", "item_id": "i1", "rating": 9}, "ratings: row 2: rating 9 is outside"),
        ({"user_id": "u1", "item_id": "i1", "rating": 0.1}, "rating 0.1 is outside"),
    ],
)
def test_a_bad_rating_rejects_the_whole_batch_with_its_row(
    client: TestClient, trained_engine: Engine, bad: dict, message: str
) -> None:
    before = count(trained_engine)
    good = {"user_id": "u2", "item_id": "i4", "rating": 3}
    response = client.post("/ratings", json={"ratings": [good, bad]})
    assert response.status_code == 422
    assert message in response.json()["error"]["message"]
    assert "nothing was stored" in response.json()["error"]["message"]
    assert count(trained_engine) == before


def test_duplicates_and_malformed_bodies_are_refused(
    client: TestClient, trained_engine: Engine
) -> None:
    before = count(trained_engine)
    twice = {"user_id": "u2", "item_id": "i4", "rating": 3}
    duplicate = client.post("/ratings", json={"ratings": [twice, twice]})
    assert duplicate.status_code == 422
    assert "duplicate rating of item 'i4' by user 'u2'" in duplicate.json()["error"]["message"]
    for body in (
        {"ratings": []},
        {"ratings": [{"user_id": "", "item_id": "i1", "rating": 3}]},
        {"ratings": [{"user_id": "u", "item_id": "i1", "rating": "NaN"}]},
        {},
    ):
        assert client.post("/ratings", json=body).status_code == 422
    assert count(trained_engine) == before


def test_the_api_key_guards_feedback_when_set(keyed_client: TestClient) -> None:
    body = {"ratings": [{"user_id": "u2", "item_id": "i4", "rating": 3}]}
    missing = keyed_client.post("/ratings", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    wrong = keyed_client.post("/ratings", json=body, headers={"X-API-Key": "guess"})
    assert wrong.status_code == 403
    right = keyed_client.post("/ratings", json=body, headers={"X-API-Key": "s3cret"})
    assert right.status_code == 200
    assert keyed_client.get("/users/u2/recommendations").status_code == 200  # reads stay open


def test_an_empty_key_header_opens_nothing(keyed_client: TestClient) -> None:
    empty = {"X-API-Key": ""}
    writes = [
        keyed_client.post(
            "/ratings",
            json={"ratings": [{"user_id": "u2", "item_id": "i4", "rating": 3}]},
            headers=empty,
        ),
        keyed_client.put("/users/someone", json={"age": 30}, headers=empty),
        keyed_client.post("/models/1/activate", headers=empty),
        keyed_client.post("/models/rollback", headers=empty),
    ]
    for response in writes:
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "missing_api_key"


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_configured_key_is_no_key(blank: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_API_KEY", blank)
    assert Settings().api_key is None
    assert Settings(api_key=blank).api_key is None
