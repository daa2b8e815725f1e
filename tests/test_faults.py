"""Fault tests with real processes: a killed training run, a model swap under load,
an unreachable database. The previously active model must keep serving throughout."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import Engine

from recsys.db import movielens
from recsys.db.engine import make_engine
from recsys.db.migrate import upgrade
from recsys.jobs.model_versions import active_version, get_version, list_versions
from tests.servers import serving

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A migrated SQLite database holding MovieLens-100k, for child processes."""
    url = f"sqlite:///{tmp_path / 'recsys.db'}"
    upgrade(url)
    engine = make_engine(url)
    movielens.load(engine, 50_000)
    engine.dispose()
    return {
        **os.environ,
        "RECSYS_DATABASE_URL": url,
        "PYTHONUNBUFFERED": "1",
        "RECSYS_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "RECSYS_MODEL_POLL_SECONDS": "0.2",
    }


def recsys(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recsys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def engine(env: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(env["RECSYS_DATABASE_URL"])
    yield engine
    engine.dispose()


def training(env: dict[str, str]) -> subprocess.Popen[str]:
    """A long `recsys train`, once it has finished its first epoch."""
    child = subprocess.Popen(
        [sys.executable, "-m", "recsys", "train", "--epochs", "500", "--promote", "always"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:  # wait until it is really training
        if line.startswith("event=epoch_end epoch=0"):
            break
    return child


def test_a_training_run_killed_mid_epoch_leaves_no_artifact_and_the_active_model_serving(
    env: dict[str, str], engine: Engine
) -> None:
    assert recsys(env, "train", "--epochs", "1").returncode == 0
    before = active_version(engine)
    versions_dir = Path(env["RECSYS_ARTIFACT_DIR"]) / "versions"
    files_before = sorted(p.name for p in versions_dir.rglob("*"))

    child = training(env)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    killed = list_versions(engine)[0]
    assert killed.status == "training"  # what a SIGKILL leaves; the next run cleans it up
    assert sorted(p.name for p in versions_dir.rglob("*")) == files_before
    assert active_version(engine) == before

    after = recsys(env, "train", "--epochs", "1", "--promote", "never")
    assert after.returncode == 0, after.stderr
    assert get_version(engine, killed.id).status == "failed"
    assert active_version(engine) == before


def test_activating_a_version_under_load_fails_no_request(
    env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    assert recsys(env, "train", "--epochs", "1").returncode == 0
    assert recsys(env, "train", "--epochs", "2", "--promote", "never").returncode == 0
    old, new = active_version(engine).id, list_versions(engine)[0].id
    with serving(env, tmp_path / "server.log", workers=2, wait_for="/ready") as base:
        results: list[tuple[int, str, float]] = []
        stop = threading.Event()

        def load() -> None:
            rng = random.Random(threading.get_ident())
            with httpx.Client(base_url=base, timeout=10) as client:
                while not stop.is_set():
                    response = client.get(f"/users/{rng.randint(1, 943)}/recommendations")
                    results.append(
                        (
                            response.status_code,
                            response.headers.get("X-Model-Version", ""),
                            time.monotonic(),
                        )
                    )

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        assert recsys(env, "models", "activate", str(new)).returncode == 0
        switched_at = time.monotonic()
        time.sleep(6)  # polling every 0.2 s, loading the new model takes a second or two
        stop.set()
        for thread in threads:
            thread.join()

    assert len(results) > 100
    assert {status for status, _, _ in results} == {200}
    versions = [version for _, version, _ in results]
    assert str(old) in versions
    late = [version for _, version, at in results if at > switched_at + 4]
    assert late
    assert set(late) == {str(new)}  # both workers moved over


def test_an_unreachable_database_at_job_start_is_a_clear_error_and_writes_nothing(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "RECSYS_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "RECSYS_ARTIFACT_DIR": str(tmp_path / "artifacts"),
    }
    result = recsys(env, "train")
    assert result.returncode == 1
    assert "error: database postgresql+psycopg://nobody@127.0.0.1:1/none: OperationalError" in (
        result.stderr
    )
    assert not (tmp_path / "artifacts").exists()


def test_two_training_jobs_at_once_leave_each_other_alone(
    env: dict[str, str], engine: Engine
) -> None:
    ranking = subprocess.Popen(
        [sys.executable, "-m", "recsys", "train", "--objective", "ranking", "--epochs", "6"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert ranking.stdout is not None
    for line in ranking.stdout:  # wait until it is really training
        if line.startswith("event=epoch_end epoch=0"):
            break
    rating = recsys(env, "train", "--epochs", "1")  # its start sweeps for stale runs
    assert rating.returncode == 0, rating.stderr
    output = ranking.stdout.read()
    assert ranking.wait(timeout=300) == 0, output

    versions = {v.objective: v for v in list_versions(engine)}
    assert versions["ranking"].status == "ready"
    assert versions["ranking"].error is None
    assert versions["ranking"].is_active
    assert versions["rating"].status == "ready"


def test_a_training_run_terminated_cleans_up_and_says_it_failed(
    env: dict[str, str], engine: Engine
) -> None:
    """SIGTERM (a container stopped, a job cancelled) ends a run through its clean-up,
    as Ctrl-C does: marked failed at once, no weights or temporary file left."""
    assert recsys(env, "train", "--epochs", "1").returncode == 0
    before = active_version(engine)
    versions_dir = Path(env["RECSYS_ARTIFACT_DIR"]) / "versions"
    files_before = sorted(p.name for p in versions_dir.rglob("*"))
    child = training(env)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 128 + signal.SIGTERM
    terminated = list_versions(engine)[0]
    assert terminated.status == "failed"
    assert "SystemExit" in (terminated.error or "")
    assert sorted(p.name for p in versions_dir.rglob("*")) == files_before
    assert active_version(engine) == before


def test_the_weights_of_a_run_killed_before_registering_are_removed_by_the_next(
    env: dict[str, str], engine: Engine
) -> None:
    from sqlalchemy import update

    from recsys.db.engine import write_transaction
    from recsys.db.identity import read_identity
    from recsys.db.tables import model_versions
    from recsys.jobs.model_versions import start_version

    killed = start_version(engine, "dot", {})
    with write_transaction(engine) as connection:  # its process is gone
        connection.execute(
            update(model_versions)
            .where(model_versions.c.id == killed)
            .values(owner=f"{socket.gethostname()}:{2**22 + 1}")
        )
    folder = Path(env["RECSYS_ARTIFACT_DIR"]) / "versions" / read_identity(engine)
    folder.mkdir(parents=True)
    left = [folder / f"{killed}-rating-dot.pt", folder / f"{killed}-rating-dot.faiss"]
    for path in left:
        path.write_bytes(b"weights written, never registered")
    assert recsys(env, "train", "--epochs", "1").returncode == 0
    assert get_version(engine, killed).status == "failed"  # type: ignore[union-attr]
    assert not any(path.exists() for path in left)
