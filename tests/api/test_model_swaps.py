"""The service moves to a newly activated model without a restart, and refuses broken ones."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from recsys.jobs.model_versions import activate, get_version
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
