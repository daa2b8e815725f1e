"""Writes from many requests at once, on real `recsys serve` processes: none is lost."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from api.main import create_app
from recsys.cli import app
from recsys.db.engine import WRITER_WAIT_SECONDS, make_engine, write_transaction
from recsys.db.migrate import upgrade
from recsys.db.tables import ratings, users
from recsys.db.write_log import RATING_WRITES_LOCK
from recsys.settings import Settings, get_settings
from tests.servers import ranking_version, service_env, serving

pytestmark = pytest.mark.slow


def post_rating(base: str, user: str, item: str, rating: float) -> httpx.Response:
    body = {"ratings": [{"user_id": user, "item_id": item, "rating": rating}]}
    return httpx.post(f"{base}/ratings", json=body, timeout=60)


def test_parallel_feedback_and_profiles_are_all_stored(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    env = service_env(database_url, tmp_path / "artifacts")
    with serving(env, tmp_path / "server.log", workers=2) as base, ThreadPoolExecutor(40) as pool:
        same_pair = list(pool.map(lambda k: post_rating(base, "u1", "i1", 1 + k % 5), range(40)))
        pairs = list(pool.map(lambda k: post_rating(base, f"u{k}", f"i{k}", 4.0), range(40)))
        profiles = list(
            pool.map(
                lambda k: httpx.put(f"{base}/users/p{k}", json={"age": 30 + k}, timeout=60),
                range(8),
            )
        )
    for response in [*same_pair, *pairs, *profiles]:
        assert response.status_code == 200, response.text
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ratings)).scalar_one() == 40
        ages = connection.execute(select(users.c.age).where(users.c.external_id.like("p%")))
        assert sorted(a for (a,) in ages) == list(range(30, 38))


def test_two_ingests_at_once_both_land(engine: Engine, database_url: str, tmp_path: Path) -> None:
    env = service_env(database_url, tmp_path / "artifacts")
    files = []
    for part in range(2):
        path = tmp_path / f"part{part}.csv"
        rows = [f"user{part}-{k},item{k % 50},{1 + k % 5}" for k in range(3000)]
        path.write_text("user_id,item_id,rating\n" + "\n".join(rows) + "\n")
        files.append(path)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "recsys", "ingest", "ratings", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in files
    ]
    for run in runs:
        output, _ = run.communicate(timeout=120)
        assert run.returncode == 0, output
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ratings)).scalar_one() == 6000


def test_a_writer_held_past_the_bound_gets_a_clear_answer_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'recsys.db'}"
    upgrade(url)
    monkeypatch.setenv("RECSYS_DATABASE_URL", url)
    get_settings.cache_clear()
    (tmp_path / "r.csv").write_text("user_id,item_id,rating\na,b,3\n")
    holder = sqlite3.connect(tmp_path / "recsys.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing for a long time
    try:
        with TestClient(create_app(Settings(database_url=url, model_poll_seconds=0))) as client:
            started = time.monotonic()
            response = client.post(
                "/ratings", json={"ratings": [{"user_id": "a", "item_id": "b", "rating": 3}]}
            )
            waited = time.monotonic() - started
            cli = CliRunner().invoke(app, ["ingest", "ratings", str(tmp_path / "r.csv")])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        get_settings.cache_clear()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_busy"
    assert response.headers["Retry-After"] == "1"
    assert waited >= WRITER_WAIT_SECONDS * 0.9  # it waited its turn first
    assert cli.exit_code == 1
    assert "is busy: another process" in cli.output
    assert "nothing was written" in cli.output
    check = make_engine(url)
    with check.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ratings)).scalar_one() == 0
    check.dispose()


def test_writers_held_up_by_a_long_ingest_get_busy_in_time_and_ready_still_answers(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """45 feedback posts while an ingest holds the writers' turn: each gets the documented
    503 database_busy within the bound (none waits on the pool, none gets a pool error),
    and /ready answers at once, so a probe does not drop the replica during a load."""
    ranking_version(engine, tmp_path / "artifacts")
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(ratings)).scalar_one()
    env = service_env(database_url, tmp_path / "artifacts")
    with (
        serving(env, tmp_path / "server.log", wait_for="/ready") as base,
        write_transaction(engine) as ingest,
        ThreadPoolExecutor(45) as pool,
    ):
        if engine.dialect.name == "postgresql":  # what `recsys ingest` holds
            ingest.execute(select(func.pg_advisory_xact_lock(RATING_WRITES_LOCK)))

        def timed_post(k: int) -> tuple[httpx.Response, float]:
            started = time.monotonic()
            response = post_rating(base, f"w{k}", "i1", 3.0)
            return response, time.monotonic() - started

        posts = pool.map(timed_post, range(45))
        time.sleep(1.0)
        started = time.monotonic()
        ready = httpx.get(f"{base}/ready", timeout=60)
        ready_seconds = time.monotonic() - started
        answers = list(posts)
    assert ready.status_code == 200, ready.text
    assert ready_seconds < 3
    for response, waited in answers:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_busy", response.text
        # The bound, plus a turn for a thread: 45 posts, 40 threads per worker.
        assert waited < 2 * WRITER_WAIT_SECONDS + 3
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ratings)).scalar_one() == stored
