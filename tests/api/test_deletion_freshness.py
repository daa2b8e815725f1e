"""Every worker of `recsys serve` follows a deletion within a second, as it follows a new
rating: a rating taken back, a user erased, an item deleted, and a deletion racing a
rating of the same pair."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import Engine

from recsys.data.catalog import read_user_ratings
from tests.api.test_freshness import FRESHNESS_SECONDS, offered_by_any_worker, top_item
from tests.servers import ranking_version, service_env, serving, wait_for_workers

pytestmark = pytest.mark.slow
KEY = {"X-API-Key": "s3cret"}


def answered_by_every_worker(base: str, path: str, **params: object) -> set[int]:
    """The statuses of 40 concurrent GETs of ``path`` (spread over the workers)."""

    def status(_: int) -> int:
        return httpx.get(f"{base}{path}", params=params, headers=KEY, timeout=10).status_code

    with ThreadPoolExecutor(16) as pool:
        return set(pool.map(status, range(40)))


def listed_by_any_worker(base: str, path: str, item: str, **params: object) -> int:
    """How many of 40 concurrent GETs of a list of items name ``item``."""

    def names(_: int) -> bool:
        response = httpx.get(f"{base}{path}", params=params, headers=KEY, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        entries = body if isinstance(body, list) else body.get("items", body.get("users"))
        return item in {entry.get("item_id", entry.get("user_id")) for entry in entries}

    with ThreadPoolExecutor(16) as pool:
        return sum(pool.map(names, range(40)))


@pytest.fixture
def base(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[str]:
    """`recsys serve --workers 2` with a key, both workers serving a ranking model."""
    ranking_version(engine, tmp_path / "artifacts")
    env = service_env(database_url, tmp_path / "artifacts", RECSYS_API_KEY="s3cret")
    with serving(env, tmp_path / "server.log", workers=2, wait_for="/ready") as url:
        wait_for_workers(url, 2, KEY)
        yield url


def test_every_worker_follows_deletions_within_a_second(base: str) -> None:
    # A rating taken back: its item is offered again by every worker.
    item = top_item(base, "u0")
    body = {"ratings": [{"user_id": "u0", "item_id": item, "rating": 5}]}
    assert httpx.post(f"{base}/ratings", json=body, headers=KEY, timeout=10).status_code == 200
    time.sleep(FRESHNESS_SECONDS)
    assert offered_by_any_worker(base, "u0", item) == 0
    gone = httpx.delete(f"{base}/users/u0/ratings/{item}", headers=KEY, timeout=10)
    assert gone.status_code == 200, gone.text
    time.sleep(FRESHNESS_SECONDS)
    assert offered_by_any_worker(base, "u0", item) == 40

    # A user erased: unknown to every worker, and nobody's neighbour.
    assert listed_by_any_worker(base, "/users/u2/similar", "u1", n=100) == 40
    assert httpx.delete(f"{base}/users/u1", headers=KEY, timeout=10).status_code == 200
    time.sleep(FRESHNESS_SECONDS)
    assert answered_by_every_worker(base, "/users/u1/recommendations") == {404}
    assert answered_by_every_worker(base, "/users/u1/similar") == {404}
    assert answered_by_every_worker(base, "/users/u1") == {404}
    assert listed_by_any_worker(base, "/users/u2/similar", "u1", n=100) == 0

    # An item deleted: never recommended, similar or popular on any worker.
    deleted = top_item(base, "u3")
    assert httpx.delete(f"{base}/items/{deleted}", headers=KEY, timeout=10).status_code == 200
    time.sleep(FRESHNESS_SECONDS)
    for user in ("u0", "u3", "u4"):
        path = f"/users/{user}/recommendations"
        assert listed_by_any_worker(base, path, deleted, n=100, exclude_seen=False) == 0
    assert answered_by_every_worker(base, f"/items/{deleted}/similar") == {404}
    assert listed_by_any_worker(base, "/items/i0/similar", deleted, n=100) == 0
    assert listed_by_any_worker(base, "/popular", deleted, n=100) == 0


def test_a_deletion_racing_a_rating_of_the_same_pair_ends_as_the_later_write(
    base: str, engine: Engine
) -> None:
    """Ratings and deletions of one pair sent at once through both workers: the database
    keeps whichever was written last, and every worker agrees with it."""
    item = top_item(base, "u0")
    body = {"ratings": [{"user_id": "u0", "item_id": item, "rating": 5}]}

    def write(step: int) -> int:
        if step % 2:
            response = httpx.delete(f"{base}/users/u0/ratings/{item}", headers=KEY, timeout=30)
        else:
            response = httpx.post(f"{base}/ratings", json=body, headers=KEY, timeout=30)
        return response.status_code

    for rounds in range(3):  # each round ends either way, by chance
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(write, range(40 + rounds))) <= {200, 404}
        time.sleep(FRESHNESS_SECONDS)
        stored = item in set(read_user_ratings(engine, "u0")["item_id"])
        assert offered_by_any_worker(base, "u0", item) == (0 if stored else 40), stored
