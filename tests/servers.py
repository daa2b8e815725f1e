"""Real `recsys serve` processes for tests that need several workers or replicas."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import Engine


def ranking_version(engine: Engine, artifact_dir: Path) -> int:
    """Load the taste-groups ratings and train a small ranking model; its version id."""
    from recsys.db.ingest import ingest
    from recsys.db.sources import from_frame
    from recsys.jobs.training_job import TrainConfig, train_and_register
    from tests.factories import taste_groups_with_unrated

    train, _ = taste_groups_with_unrated()
    ingest(engine, from_frame("ratings", train, 500))
    config = TrainConfig(objective="ranking", epochs=3, batch_size=64, n_factors=8, device="cpu")
    return train_and_register(engine, config, artifact_dir, progress=False).version_id


def wait_for_workers(base: str, workers: int, headers: dict[str, str] | None = None) -> None:
    """Until ``workers`` workers each serve a model (one answering /ready says nothing of
    the others, which may still be loading): from the pids in /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + 60
    while True:
        text = httpx.get(f"{base}/metrics", headers=headers, timeout=10).text
        pids = {
            sample.labels["pid"]
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "recsys_model_version"
        }
        if len(pids) >= workers:
            return
        assert time.monotonic() < deadline, f"{len(pids)} of {workers} workers started"
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_env(database_url: str, artifact_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process pointed at ``database_url``."""
    return {
        **os.environ,
        "RECSYS_DATABASE_URL": database_url,
        "RECSYS_ARTIFACT_DIR": str(artifact_dir),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@contextmanager
def serving(
    env: dict[str, str],
    log: Path,
    workers: int = 1,
    wait_for: str = "/health",
    deaths: int = 0,
    options: Sequence[str] = (),
) -> Iterator[str]:
    """``recsys serve`` on a free loopback port until the block ends; yields its base URL.

    Waits until ``wait_for`` answers 200; the server's output goes to ``log`` (shown
    when it fails to get there). Fails if more than ``deaths`` workers died (the ones
    a test kills itself). ``options``: more of `recsys serve`'s options.
    """
    port = free_port()
    with log.open("w") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "recsys",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                *options,
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}{wait_for}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
    # uvicorn's supervisor kills and restarts a worker that misses its health check.
    died = log.read_text().count("died")
    assert died <= deaths, f"{died} workers died:\n{log.read_text()[-3000:]}"
