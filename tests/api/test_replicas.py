"""Several `recsys serve` replicas against one PostgreSQL answer alike: the same model
version after a swap, the same seen items after a rating."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import Engine

from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.jobs.training_job import TrainConfig, train_and_register
from tests.factories import taste_groups_with_unrated
from tests.servers import service_env, serving

pytestmark = pytest.mark.slow
RANKING = TrainConfig(objective="ranking", epochs=2, batch_size=64, n_factors=8, device="cpu")


def version_of(base: str) -> int:
    response = httpx.get(f"{base}/users/u0/recommendations", timeout=10)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Model-Version"])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_replicas_swap_together_and_share_new_ratings(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    train, _ = taste_groups_with_unrated()
    ingest(engine, from_frame("ratings", train, 500))
    artifacts = tmp_path / "artifacts"
    first = train_and_register(engine, RANKING, artifacts, progress=False).version_id
    env = service_env(database_url, artifacts, RECSYS_MODEL_POLL_SECONDS="0.5")
    with ExitStack() as replicas:
        bases = [
            replicas.enter_context(serving(env, tmp_path / f"replica-{i}.log", wait_for="/ready"))
            for i in range(2)
        ]
        assert [version_of(base) for base in bases] == [first, first]

        second = train_and_register(
            engine, RANKING, artifacts, progress=False, promote="always"
        ).version_id
        deadline = time.monotonic() + 10
        while {version_of(base) for base in bases} != {second}:
            assert time.monotonic() < deadline, "the replicas did not both swap"
            time.sleep(0.25)

        # A rating posted to one replica is left out by the other within a second.
        top = httpx.get(f"{bases[1]}/users/u1/recommendations", params={"n": 1}, timeout=10)
        item = top.json()["items"][0]["item_id"]
        body = {"ratings": [{"user_id": "u1", "item_id": item, "rating": 5}]}
        assert httpx.post(f"{bases[0]}/ratings", json=body, timeout=10).status_code == 200
        time.sleep(1.0)
        again = httpx.get(f"{bases[1]}/users/u1/recommendations", params={"n": 20}, timeout=10)
        assert item not in {entry["item_id"] for entry in again.json()["items"]}
