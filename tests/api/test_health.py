"""Liveness and readiness through the real app."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from recsys.settings import Settings


def test_health_and_readiness_without_a_model(engine: Engine, settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        ready = client.get("/ready")
        recommendations = client.get("/users/u1/recommendations")
        no_active = client.get("/models/active")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "no_model"
    assert recommendations.status_code == 503
    assert "run `recsys train`" in recommendations.json()["error"]["message"]
    assert no_active.status_code == 404


def test_ready_says_what_is_missing_on_an_unmigrated_database(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "schema_outdated"
    assert "recsys db upgrade" in ready.json()["error"]["message"]


def test_errors_have_one_json_shape(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"code", "message"}
