"""Readers during a big load: every read answers, and sees all the old ratings or all the new."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx2 as httpx
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text

from recsys.db.ingest import IngestReport, ingest
from recsys.db.sources import from_frame
from recsys.db.tables import items, ratings, users
from tests.servers import ranking_version, service_env, serving, wait_for_workers

pytestmark = pytest.mark.slow

N_USERS, N_ITEMS = 600, 100  # 60,000 ratings: a big load (recsys.db.merge.BULK_LOAD_ROWS)


def bulk_ratings(value: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [f"b{u}" for u in range(N_USERS) for _ in range(N_ITEMS)],
            "item_id": [f"j{i}" for _ in range(N_USERS) for i in range(N_ITEMS)],
            "rating": value,
        }
    )


def totals(engine: Engine) -> tuple[int, float]:
    """The ratings' count and sum, in one statement that may wait 2 s at most."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET statement_timeout = 2000"))
        count, total = connection.execute(
            select(func.count(), func.sum(ratings.c.value)).select_from(ratings)
        ).one()
        return count, float(total)


def wait_until_swapping(engine: Engine, deadline: float) -> None:
    """Until the load asks for the ratings table's lock (PostgreSQL's big-load swap)."""
    asking = text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LOCK TABLE ratings%'")
    while True:
        with engine.connect() as connection:  # the view is a snapshot per transaction
            if connection.execute(asking).scalar_one():
                return
        assert time.monotonic() < deadline, "the load never reached its swap"
        time.sleep(0.02)


def test_a_big_load_leaves_readers_answered_with_all_old_or_all_new_ratings(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """A reader holds the ratings, users and items in a long transaction (a training job's
    scan), and another the users alone, while 60,000 ratings are re-loaded with new
    values. Other readers, SQL and two serving workers, keep getting answers within 2 s
    (on PostgreSQL, the swap's lock requests never queue them behind the long readers),
    every total is the old one or the new one, and the load lands once both have ended."""
    ranking_version(engine, tmp_path / "artifacts")
    ingest(engine, from_frame("ratings", bulk_ratings(3.0), 20_000))
    old = totals(engine)
    new = (old[0], old[1] + N_USERS * N_ITEMS)
    env = service_env(database_url, tmp_path / "artifacts")
    with serving(env, tmp_path / "server.log", workers=2, wait_for="/ready") as base:
        wait_for_workers(base, 2)
        long_reader = engine.connect()
        scan = long_reader.begin()
        long_reader.execute(  # as a training job reads: ratings with their users and items
            select(func.count()).select_from(
                ratings.join(users, users.c.id == ratings.c.user_id).join(
                    items, items.c.id == ratings.c.item_id
                )
            )
        ).scalar_one()
        profile_reader = engine.connect()  # and another holds the users alone, a while longer
        profile_read = profile_reader.begin()
        profile_reader.execute(select(func.count()).select_from(users)).scalar_one()
        reports: list[IngestReport] = []
        loader = threading.Thread(
            target=lambda: reports.append(
                ingest(engine, from_frame("ratings", bulk_ratings(4.0), 20_000))
            )
        )
        loader.start()
        try:
            if engine.dialect.name == "postgresql":
                wait_until_swapping(engine, time.monotonic() + 60)
            seen, answers = [], []
            until = time.monotonic() + 1.5
            while time.monotonic() < until:
                seen.append(totals(engine))
                answers.append(httpx.get(f"{base}/users/u0/recommendations?n=3", timeout=2))
        finally:
            scan.rollback()
            long_reader.close()
            time.sleep(1.0)  # the swap drops the old table's keys: it needs the users too
            profile_read.rollback()
            profile_reader.close()
            loader.join(timeout=120)
        assert reports, "the load did not finish once the long reader ended"
        after = httpx.get(f"{base}/users/u0/recommendations?n=3", timeout=2)

    assert (reports[0].ratings_inserted, reports[0].ratings_updated) == (0, N_USERS * N_ITEMS)
    assert set(seen) <= {old, new}, set(seen) - {old, new}
    assert [a.status_code for a in answers] == [200] * len(answers)
    assert after.status_code == 200
    assert totals(engine) == new
