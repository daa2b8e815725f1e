"""The service moves to a newly activated model without a restart, and refuses broken ones."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from recsys.collab import load_recommender
from recsys.jobs.model_versions import activate, active_version, get_version
from recsys.jobs.training_job import train_and_register
from recsys.settings import Settings
from tests.api.conftest import TRAIN


def served_version(client: TestClient) -> int:
    return int(client.get("/users/u0/recommendations").headers["X-Model-Version"])


def test_activate_and_rollback_endpoints_swap_the_served_model(
    trained_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    second = train_and_register(
        trained_engine, TRAIN, tmp_path / "artifacts", progress=False
    ).version_id
    keyed = settings.model_copy(update={"api_key": "k", "model_poll_seconds": 0})
    with TestClient(create_app(keyed)) as client:
        assert served_version(client) == second
        assert client.post("/models/rollback").status_code == 401
        rolled = client.post("/models/rollback", headers={"X-API-Key": "k"})
        assert rolled.status_code == 200
        assert served_version(client) == second - 1 == rolled.json()["id"]
        again = client.post(f"/models/{second}/activate", headers={"X-API-Key": "k"})
        assert again.json()["is_active"] is True
        assert served_version(client) == second
        missing = client.post("/models/999/activate", headers={"X-API-Key": "k"})
        assert missing.status_code == 404


def test_a_damaged_artifact_is_refused_and_the_old_model_keeps_serving(
    trained_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    second = train_and_register(
        trained_engine, TRAIN, tmp_path / "artifacts", progress=False
    ).version_id
    first = second - 1
    Path(get_version(trained_engine, first).artifact_path).write_bytes(b"\x00garbage")
    with TestClient(create_app(settings.model_copy(update={"model_poll_seconds": 0}))) as client:
        refused = client.post(f"/models/{first}/activate")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "cannot_activate"
        assert "do not load" in refused.json()["error"]["message"]
        assert served_version(client) == second
        assert client.get("/models/active").json()["id"] == second


def test_each_worker_notices_a_version_activated_elsewhere(
    trained_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    second = train_and_register(
        trained_engine, TRAIN, tmp_path / "artifacts", progress=False
    ).version_id
    with TestClient(create_app(settings.model_copy(update={"model_poll_seconds": 0.1}))) as client:
        assert served_version(client) == second
        activate(trained_engine, second - 1)  # as `recsys models activate` would
        deadline = time.monotonic() + 10
        while served_version(client) != second - 1:
            assert time.monotonic() < deadline, "the new version was not picked up"
            time.sleep(0.05)


def test_the_service_starts_with_a_missing_or_damaged_artifact_and_says_which(
    trained_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    ranking = train_and_register(
        trained_engine,
        replace(TRAIN, objective="ranking", epochs=3),
        tmp_path / "artifacts",
        progress=False,
    ).version_id
    rating = active_version(trained_engine, "rating")
    Path(get_version(trained_engine, ranking).artifact_path).unlink()
    still = settings.model_copy(update={"model_poll_seconds": 0})
    with TestClient(create_app(still)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["models"] == {"rating": rating.id}
        assert ready.json()["broken"]["ranking"]["version"] == ranking
        assert "FileNotFoundError" in ready.json()["broken"]["ranking"]["error"]
        # The rating model stands in for recommendations.
        assert served_version(client) == rating.id

    path = Path(rating.artifact_path)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with TestClient(create_app(still)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "no_loadable_model"
        assert f"rating version {rating.id}" in ready.json()["error"]["message"]
        assert f"ranking version {ranking}" in ready.json()["error"]["message"]
        assert client.get("/users/u0/recommendations").status_code == 503
        assert client.get("/health").status_code == 200


def test_artifact_paths_are_absolute_so_commands_run_from_anywhere(
    trained_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    version = train_and_register(trained_engine, TRAIN, Path("relative-artifacts"), progress=False)
    stored = get_version(trained_engine, version.version_id).artifact_path
    assert Path(stored).is_absolute()
    monkeypatch.chdir("/")
    assert load_recommender(stored).recommend("u0", n=3) is not None


def test_a_broken_rating_model_is_named_not_taken_for_a_missing_one(
    trained_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Rating predictions when the active rating model's file is damaged: a 503 that
    says so, not the 409 meant for a service with no rating model at all."""
    train_and_register(
        trained_engine,
        replace(TRAIN, objective="ranking", epochs=3),
        tmp_path / "artifacts",
        progress=False,
    )
    rating = active_version(trained_engine, "rating")
    path = Path(rating.artifact_path)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with TestClient(create_app(settings.model_copy(update={"model_poll_seconds": 0}))) as client:
        answer = client.post("/predictions", json={"pairs": [{"user_id": "u0", "item_id": "i1"}]})
        assert client.get("/users/u0/recommendations").status_code == 200  # ranking serves
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "model_unavailable"
    assert f"version {rating.id}" in answer.json()["error"]["message"]
