"""A hybrid rating model serves users who registered metadata but have no ratings yet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.jobs.training_job import TrainConfig, train_and_register
from recsys.settings import Settings
from tests.api.conftest import catalog
from tests.factories import two_taste_groups

HYBRID = TrainConfig(
    model="hybrid", epochs=20, lr=1e-2, wd=0.01, batch_size=64, valid_pct=0.1, device="cpu"
)
COMEDIES = {f"i{i}" for i in range(10)}


def profiles() -> pd.DataFrame:
    """Even users (comedy lovers) are young women, odd users (horror fans) older men."""
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(40)],
            "age": [24 if u % 2 == 0 else 61 for u in range(40)],
            "gender": ["F" if u % 2 == 0 else "M" for u in range(40)],
            "occupation": ["student" if u % 2 == 0 else "retired" for u in range(40)],
        }
    )


@pytest.fixture
def hybrid(engine: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    train, _ = two_taste_groups()
    ingest(
        engine,
        from_frame("ratings", train, 500),
        users_source=from_frame("users", profiles(), 50),
        items_source=from_frame("items", catalog(), 50),
    )
    result = train_and_register(engine, HYBRID, tmp_path / "artifacts", progress=False)
    assert result.promoted
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_new_user_with_metadata_gets_recommendations_from_it(hybrid: TestClient) -> None:
    created = hybrid.put("/users/newbie", json={"age": 22, "gender": "F", "occupation": "student"})
    assert created.status_code == 200, created.text
    assert created.json()["created"] is True
    assert hybrid.get("/users/newbie").json() == {
        "age": 22,
        "gender": "F",
        "occupation": "student",
    }
    body = hybrid.get("/users/newbie/recommendations", params={"n": 5}).json()
    assert body["fallback"] == "metadata"
    assert {item["item_id"] for item in body["items"]} <= COMEDIES

    hybrid.put("/users/oldie", json={"age": 70, "gender": "M", "occupation": "retired"})
    body = hybrid.get("/users/oldie/recommendations", params={"n": 5}).json()
    assert not {item["item_id"] for item in body["items"]} & COMEDIES

    # A rating given since training counts as seen.
    first = hybrid.get("/users/newbie/recommendations", params={"n": 1}).json()["items"][0]
    hybrid.post(
        "/ratings",
        json={"ratings": [{"user_id": "newbie", "item_id": first["item_id"], "rating": 5}]},
    )
    after = hybrid.get("/users/newbie/recommendations", params={"n": 20}).json()["items"]
    assert first["item_id"] not in {item["item_id"] for item in after}

    predicted = hybrid.post(
        "/predictions",
        json={
            "pairs": [{"user_id": "newbie", "item_id": "i2"}, {"user_id": "oldie", "item_id": "i2"}]
        },
    ).json()["predictions"]
    assert predicted[0]["rating"] > predicted[1]["rating"] + 1.0


def test_without_metadata_the_old_rules_hold(hybrid: TestClient) -> None:
    assert hybrid.put("/users/blank", json={}).status_code == 200
    unknown = hybrid.get("/users/blank/recommendations")
    assert unknown.status_code == 404
    popular = hybrid.get("/users/blank/recommendations", params={"fallback": "popular"}).json()
    assert popular["fallback"] == "popular"
    assert hybrid.get("/users/nobody").status_code == 404
    pairs = [{"user_id": "nobody", "item_id": "i1"}]
    baseline = hybrid.post("/predictions", json={"pairs": pairs})
    assert baseline.status_code == 200
    assert baseline.json()["predictions"][0]["baseline"] is True
    missing = hybrid.post("/predictions", json={"pairs": pairs, "unknown": "error"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_user"


def test_bad_profiles_are_refused_and_change_nothing(hybrid: TestClient) -> None:
    hybrid.put("/users/u0", json={"age": 24, "gender": "F", "occupation": "student"})
    assert hybrid.put("/users/u0", json={"age": 500}).status_code == 422
    assert hybrid.put("/users/u0", json={"gender": ""}).status_code == 422
    assert hybrid.put("/users/u0%0D", json={}).status_code == 422  # stored ids are stripped
    assert hybrid.get("/users/u0").json()["age"] == 24
    updated = hybrid.put("/users/u0", json={"age": 30})  # fields left out are kept
    assert updated.json() == {
        "user_id": "u0",
        "age": 30,
        "gender": "F",
        "occupation": "student",
        "created": False,
    }
