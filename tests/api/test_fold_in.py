"""Users the model never saw get personal recommendations from their ratings at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.main import create_app
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.db.tables import ratings
from recsys.jobs.training_job import TrainConfig, train_and_register
from recsys.settings import Settings
from tests.api.conftest import catalog
from tests.factories import taste_groups_with_unrated

COMEDIES = {f"i{i}" for i in range(10)}


@pytest.fixture
def ranking_client(engine: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    train, _ = taste_groups_with_unrated()
    ingest(engine, from_frame("ratings", train, 500), items_source=from_frame("i", catalog(), 50))
    config = TrainConfig(
        objective="ranking", epochs=15, lr=0.05, wd=0.0, batch_size=64, n_factors=8, device="cpu"
    )
    train_and_register(engine, config, tmp_path / "artifacts", progress=False)
    with TestClient(create_app(settings.model_copy(update={"model_poll_seconds": 0}))) as client:
        yield client


def stored_ratings(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(ratings)).scalar_one()


def test_a_new_user_who_rates_three_comedies_gets_comedies_at_once(
    ranking_client: TestClient,
) -> None:
    assert ranking_client.get("/users/newbie/recommendations").status_code == 404
    loved = ["i1", "i4", "i7"]
    body = {"ratings": [{"user_id": "newbie", "item_id": i, "rating": 5} for i in loved]}
    assert ranking_client.post("/ratings", json=body).status_code == 200

    answer = ranking_client.get("/users/newbie/recommendations", params={"n": 5}).json()
    assert answer["fallback"] == "fold_in"
    items = [item["item_id"] for item in answer["items"]]
    assert len(items) == 5
    assert set(items) <= COMEDIES - set(loved)
    again = ranking_client.get("/users/newbie/recommendations", params={"n": 5}).json()
    assert again == answer  # the same ratings: the same (cached) answer

    more = {"ratings": [{"user_id": "newbie", "item_id": items[0], "rating": 5}]}
    assert ranking_client.post("/ratings", json=more).status_code == 200
    after = ranking_client.get("/users/newbie/recommendations", params={"n": 5}).json()
    assert items[0] not in {item["item_id"] for item in after["items"]}  # ratings changed


def test_an_anonymous_session_is_answered_and_nothing_is_stored(
    ranking_client: TestClient, engine: Engine
) -> None:
    before = stored_ratings(engine)
    looked_at = ["i12", "i15", "i18", "not-an-item"]
    response = ranking_client.post(
        "/users/visitor-17/recommendations", json={"items": looked_at, "n": 4}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["user_id"], answer["fallback"]) == ("visitor-17", "fold_in")
    items = {item["item_id"] for item in answer["items"]}
    assert len(items) == 4
    assert not items & COMEDIES  # horror in, horror out
    assert not items & set(looked_at)
    assert stored_ratings(engine) == before
    unknown = ranking_client.post("/users/v/recommendations", json={"items": ["nope"]})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_items"
