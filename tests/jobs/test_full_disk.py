"""A training run whose weights cannot be written: one clear line, no file left behind,
the active version untouched."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from recsys.db.engine import make_engine
from recsys.db.ingest import ingest
from recsys.db.migrate import upgrade
from recsys.db.sources import from_frame
from recsys.jobs.model_versions import active_version, list_versions
from tests.conftest import _fresh_postgres_database

# The database is PostgreSQL, a process of its own: the size limit set on the training
# process then falls on the files it writes itself, the weights.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]
LIMIT_BYTES = 200_000  # the weights of the model below take about 0.9 MB


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    yield from _fresh_postgres_database(postgres_server)


def small_disk() -> None:
    """In the child: files may not grow past LIMIT_BYTES, and a write past it fails with
    an error (EFBIG) instead of killing the process (SIGXFSZ), as a full disk does."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT_BYTES, LIMIT_BYTES))


def train(env: dict[str, str], limited: bool) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-B",
        "-m",
        "recsys",
        "train",
        "--epochs",
        "1",
        "--promote",
        "always",
    ]
    return subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=small_disk if limited else None,
    )


def test_weights_that_cannot_be_written_fail_in_one_line_and_leave_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    upgrade(postgres_url)
    engine: Engine = make_engine(postgres_url)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"user_id": rng.integers(0, 3000, 40_000), "item_id": rng.integers(0, 300, 40_000)}
    ).drop_duplicates()
    frame["rating"] = rng.integers(1, 6, len(frame)).astype(float)
    ingest(engine, from_frame("ratings", frame, 10_000))
    artifacts = tmp_path / "artifacts"
    env = {**os.environ, "RECSYS_DATABASE_URL": postgres_url, "RECSYS_ARTIFACT_DIR": str(artifacts)}
    assert train(env, limited=False).returncode == 0
    before = active_version(engine)
    files = sorted(artifacts.rglob("*"))

    failed = train(env, limited=True)

    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert "File too large" in failed.stderr
    assert "nothing half-written was kept" in " ".join(failed.stderr.split())
    assert sorted(artifacts.rglob("*")) == files  # no temporary file, no weights
    assert active_version(engine) == before
    assert list_versions(engine)[0].status == "failed"
    engine.dispose()
