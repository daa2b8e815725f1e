"""A SQLite file deleted or replaced under a running service: nothing is acknowledged that
is not in the file the database is now, and /ready says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from recsys.db.engine import DatabaseFileChanged, make_engine, write_transaction
from recsys.db.migrate import upgrade
from recsys.db.tables import users
from tests.servers import ranking_version, service_env, serving, wait_for_workers

pytestmark = pytest.mark.slow


def post_ratings(base: str, n: int) -> list[int]:
    """Statuses of ``n`` one-rating posts (two workers: both pooled connections tried)."""
    return [
        httpx.post(
            f"{base}/ratings",
            json={"ratings": [{"user_id": "u0", "item_id": f"i{n % 20}", "rating": 4}]},
            timeout=30,
        ).status_code
        for n in range(n)
    ]


@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_no_write_is_acknowledged_into_a_file_that_is_gone(tmp_path: Path, change: str) -> None:
    path = tmp_path / "recsys.db"
    database_url = f"sqlite:///{path}"
    upgrade(database_url)
    engine = make_engine(database_url)
    ranking_version(engine, tmp_path / "artifacts")
    engine.dispose()
    env = service_env(database_url, tmp_path / "artifacts")
    with serving(env, tmp_path / "server.log", workers=2, wait_for="/ready") as base:
        wait_for_workers(base, 2)  # each has opened the file a replacement must not move
        assert set(post_ratings(base, 4)) == {200}
        copy = tmp_path / "copy.db"
        shutil.copy(path, copy)
        path.unlink()
        if change == "replaced":
            copy.rename(path)
        statuses = post_ratings(base, 10)
        ready = httpx.get(f"{base}/ready", timeout=30)
    assert statuses == [503] * 10
    assert path.exists() == (change == "replaced")  # no empty database made in its place
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "database_file_changed"
    assert change in ready.json()["error"]["message"]


def test_a_write_transaction_refuses_to_commit_into_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "recsys.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:  # opened: the engine knows its file now
        connection.execute(select(func.count()).select_from(users))
    (tmp_path / "old.db").hardlink_to(path)  # the file the engine opened, kept reachable
    shutil.copy(path, tmp_path / "copy.db")
    (tmp_path / "copy.db").replace(path)
    with (
        pytest.raises(DatabaseFileChanged, match="replaced"),
        write_transaction(engine) as connection,
    ):
        connection.execute(users.insert().values(external_id="lost"))
    engine.dispose()
    with make_engine(f"sqlite:///{tmp_path / 'old.db'}").connect() as connection:
        assert connection.execute(select(func.count()).select_from(users)).scalar_one() == 0
