"""Every worker of `recsys serve` sees a new rating within a second, wherever it was written."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from tests.servers import ranking_version, service_env, serving

pytestmark = pytest.mark.slow
FRESHNESS_SECONDS = 1.0  # the documented bound: RECSYS_RATINGS_POLL_SECONDS is 0.5


def top_item(base: str, user: str) -> str:
    response = httpx.get(f"{base}/users/{user}/recommendations", params={"n": 1}, timeout=10)
    return response.json()["items"][0]["item_id"]


def offered_by_any_worker(base: str, user: str, item: str) -> int:
    """How many of 40 concurrent requests (spread over the workers) still offer ``item``."""

    def offers(_: int) -> bool:
        response = httpx.get(f"{base}/users/{user}/recommendations", params={"n": 20}, timeout=10)
        assert response.status_code == 200, response.text
        return item in {entry["item_id"] for entry in response.json()["items"]}

    with ThreadPoolExecutor(16) as pool:
        return sum(pool.map(offers, range(40)))


def test_a_rating_written_anywhere_is_excluded_by_every_worker_within_a_second(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    ranking_version(engine, tmp_path / "artifacts")
    env = service_env(database_url, tmp_path / "artifacts")
    with serving(env, tmp_path / "server.log", workers=2, wait_for="/ready") as base:
        # Posted to one worker: the other must exclude it too.
        posted = top_item(base, "u0")
        body = {"ratings": [{"user_id": "u0", "item_id": posted, "rating": 5}]}
        assert httpx.post(f"{base}/ratings", json=body, timeout=10).status_code == 200
        time.sleep(FRESHNESS_SECONDS)
        assert offered_by_any_worker(base, "u0", posted) == 0

        # Written by `recsys ingest` in another process while serving.
        ingested = top_item(base, "u1")
        path = tmp_path / "more.csv"
        path.write_text(f"user_id,item_id,rating\nu1,{ingested},2\n")
        command = [sys.executable, "-m", "recsys", "ingest", "ratings", str(path)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        time.sleep(FRESHNESS_SECONDS)
        assert offered_by_any_worker(base, "u1", ingested) == 0


def test_an_item_hidden_through_one_worker_leaves_every_worker_within_a_second(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    ranking_version(engine, tmp_path / "artifacts")
    env = service_env(database_url, tmp_path / "artifacts", RECSYS_API_KEY="s3cret")
    with serving(env, tmp_path / "server.log", workers=2, wait_for="/ready") as base:
        item = top_item(base, "u0")
        hide = httpx.patch(
            f"{base}/items/{item}",
            json={"hidden": True},
            headers={"X-API-Key": "s3cret"},
            timeout=10,
        )
        assert hide.status_code == 200, hide.text
        time.sleep(FRESHNESS_SECONDS)
        assert offered_by_any_worker(base, "u0", item) == 0
        assert offered_by_any_worker(base, "u2", item) == 0


def followed(base: str) -> float:
    """recsys_followed_ratings_total, added up over the workers."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "recsys_followed_ratings_total"
    )


def test_a_write_bigger_than_a_page_is_followed_to_its_last_rating(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """One ingest of 120,001 ratings: every rating of a write has the same number, and the
    workers read them 100,000 at a time; each worker must fold in all of them."""
    ranking_version(engine, tmp_path / "artifacts")
    env = service_env(database_url, tmp_path / "artifacts")
    with serving(env, tmp_path / "server.log", workers=2, wait_for="/ready") as base:
        rated = top_item(base, "u0")
        path = tmp_path / "big.csv"
        with path.open("w") as big:
            big.write("user_id,item_id,rating\n")
            for user in range(6_000):
                big.writelines(f"new{user},i{item},3\n" for item in range(20))
            big.write(f"u0,{rated},5\n")  # the known user's rating comes last
        command = [sys.executable, "-m", "recsys", "ingest", "ratings", str(path)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        expected = 2 * 120_001  # both workers, every rating once
        deadline = time.monotonic() + 60
        while (count := followed(base)) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(FRESHNESS_SECONDS)
        assert followed(base) == count == expected
        assert offered_by_any_worker(base, "u0", rated) == 0
