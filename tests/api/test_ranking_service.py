"""Which model answers what: recommendations from the ranking model, ratings from the rating one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.jobs.model_versions import active_version
from recsys.jobs.training_job import TrainConfig, train_and_register
from recsys.settings import Settings
from tests.api.conftest import catalog
from tests.factories import two_taste_groups

RANKING = TrainConfig(objective="ranking", model="ease", l2=10.0, valid_pct=0.1, device="cpu")


@pytest.fixture
def both_engine(trained_engine: Engine, tmp_path: Path) -> Engine:
    train_and_register(trained_engine, RANKING, tmp_path / "artifacts", progress=False)
    return trained_engine


@pytest.fixture
def both(both_engine: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_recommendations_come_from_the_ranking_model_and_ratings_from_the_rating_one(
    both: TestClient, both_engine: Engine
) -> None:
    rating, ranking = (active_version(both_engine, o).id for o in ("rating", "ranking"))
    _, held_out = two_taste_groups()

    response = both.get("/users/u0/recommendations", params={"n": 3})
    assert response.status_code == 200
    assert response.json()["model_version"] == ranking
    assert response.headers["X-Model-Version"] == str(ranking)
    unseen = held_out.loc[held_out["user_id"] == "u0", "item_id"].iloc[0]
    assert [item["item_id"] for item in response.json()["items"]] == [unseen]  # the one left

    predicted = both.post("/predictions", json={"pairs": [{"user_id": "u0", "item_id": "i1"}]})
    assert predicted.json()["model_version"] == rating
    assert 4.0 < predicted.json()["predictions"][0]["rating"] <= 5.5

    ready = both.get("/ready").json()
    assert ready["models"] == {"rating": rating, "ranking": ranking}
    assert ready["recommendations_from"] == ranking
    assert both.get("/models/active", params={"objective": "ranking"}).json()["id"] == ranking
    assert both.get("/models/active").json()["objective"] == "rating"


def test_feedback_counts_as_seen_for_the_ranking_model_at_once(both: TestClient) -> None:
    first = both.get("/users/u0/recommendations", params={"n": 1}).json()["items"][0]["item_id"]
    stored = both.post(
        "/ratings", json={"ratings": [{"user_id": "u0", "item_id": first, "rating": 5}]}
    )
    assert stored.status_code == 200
    after = both.get("/users/u0/recommendations", params={"n": 20}).json()["items"]
    assert first not in [item["item_id"] for item in after]


def test_the_operator_can_keep_recommending_with_the_rating_model(
    both_engine: Engine, settings: Settings
) -> None:
    with TestClient(create_app(settings.model_copy(update={"recommend_with": "rating"}))) as client:
        body = client.get("/users/u0/recommendations").json()
    assert body["model_version"] == active_version(both_engine, "rating").id


def test_with_only_a_ranking_model_predictions_are_refused_and_the_rest_answers(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    train, _ = two_taste_groups()
    ingest(
        engine, from_frame("ratings", train, 500), items_source=from_frame("items", catalog(), 50)
    )
    train_and_register(engine, RANKING, tmp_path / "artifacts", progress=False)
    with TestClient(create_app(settings)) as client:
        assert client.get("/users/u0/recommendations").status_code == 200
        assert client.get("/items/i0/similar").status_code == 200
        refused = client.post("/predictions", json={"pairs": [{"user_id": "u0", "item_id": "i1"}]})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "no_rating_model"
        assert "recsys train --objective rating" in refused.json()["error"]["message"]
        assert client.get("/models/active").status_code == 404


def test_rollback_takes_the_objective(
    both_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    older = active_version(both_engine, "ranking").id
    newer = train_and_register(both_engine, RANKING, tmp_path / "artifacts", progress=False)
    keyed = settings.model_copy(update={"api_key": "k", "model_poll_seconds": 0})
    with TestClient(create_app(keyed)) as client:
        assert client.get("/users/u0/recommendations").json()["model_version"] == newer.version_id
        rolled = client.post(
            "/models/rollback", params={"objective": "ranking"}, headers={"X-API-Key": "k"}
        )
        assert rolled.json()["id"] == older
        assert client.get("/users/u0/recommendations").json()["model_version"] == older
        rating = client.post("/models/rollback", headers={"X-API-Key": "k"})
        assert rating.status_code == 409  # one rating version only: nothing earlier
