"""Prometheus metrics at /metrics: per-route counters that add up across workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from recsys.db.engine import make_engine
from recsys.db.migrate import upgrade
from tests.servers import free_port, ranking_version, service_env, serving, wait_for_workers

RECOMMENDATIONS = "/users/{user_id}/recommendations"


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def worker_pids(text: str) -> set[str]:
    return {labels["pid"] for labels, _ in samples(text, "recsys_model_version")}


def requests(text: str, route: str, status: str = "200") -> float:
    return sum(
        value
        for labels, value in samples(text, "recsys_http_requests_total")
        if labels["route"] == route and labels["status"] == status
    )


def test_requests_feedback_and_models_are_counted(client: TestClient) -> None:
    before = client.get("/metrics").text
    for user in ("u0", "u1", "u2"):
        assert client.get(f"/users/{user}/recommendations").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    body = {"ratings": [{"user_id": "u0", "item_id": "i3", "rating": 4}]}
    assert client.post("/ratings", json=body).status_code == 200
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert requests(text, RECOMMENDATIONS) - requests(before, RECOMMENDATIONS) == 3
    assert requests(text, "unmatched", "404") - requests(before, "unmatched", "404") == 1
    latency = samples(text, "recsys_http_request_duration_seconds_count")
    assert any(labels["route"] == RECOMMENDATIONS for labels, _ in latency)
    feedback = samples(text, "recsys_feedback_ratings_total")
    stored = {labels["outcome"]: value for labels, value in feedback}
    assert stored["inserted"] + stored["updated"] >= 1
    versions = samples(text, "recsys_model_version")
    assert {labels["objective"] for labels, _ in versions} >= {"rating"}


def test_the_access_log_is_asked_for(tmp_path: Path) -> None:
    env = service_env(f"sqlite:///{tmp_path / 'recsys.db'}", tmp_path / "artifacts")
    log = tmp_path / "server.log"
    with serving(env, log, options=["--access-log"]) as base:
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200
    assert '"GET /health HTTP/1.1" 200' in log.read_text()


@pytest.mark.slow
def test_two_workers_add_up_and_each_reports_its_model_version(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    version = ranking_version(engine, tmp_path / "artifacts")
    # The environment asks for more threads: each worker must keep to one all the same.
    env = service_env(
        database_url, tmp_path / "artifacts", RECSYS_API_KEY="s3cret", OMP_NUM_THREADS="2"
    )
    key = {"X-API-Key": "s3cret"}
    with serving(env, tmp_path / "server.log", workers=2, wait_for="/ready") as base:
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
        wait_for_workers(base, 2, key)  # /ready answered from one worker: wait for both

        def recommend(i: int) -> int:
            url = f"{base}/users/u{i % 40}/recommendations"
            return httpx.get(url, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(recommend, range(60))) == {200}
        text = httpx.get(f"{base}/metrics", headers=key, timeout=10).text
    assert requests(text, RECOMMENDATIONS) == 60  # both workers' counts, added
    assert "GET /users/" not in (tmp_path / "server.log").read_text()  # no access log
    versions = samples(text, "recsys_model_version")
    ranking = [
        (labels["pid"], value) for labels, value in versions if labels["objective"] == "ranking"
    ]
    assert len({pid for pid, _ in ranking}) == 2  # one series per worker
    assert {value for _, value in ranking} == {float(version)}
    threads = samples(text, "recsys_worker_threads")
    assert {labels["pid"] for labels, _ in threads} == {pid for pid, _ in ranking}
    pools = {labels["pool"] for labels, _ in threads}
    assert "torch" in pools
    assert any("openblas" in pool for pool in pools)  # numpy's and scipy's BLAS
    assert any("gomp" in pool for pool in pools)  # OpenMP (torch, faiss)
    assert {value for _, value in threads} == {1.0}  # every pool of every worker


def test_serve_refuses_a_metrics_folder_that_holds_anything_else(tmp_path: Path) -> None:
    """Metrics files are removed at start: a database beside them must never be."""
    database_url = f"sqlite:///{tmp_path / 'recsys.db'}"
    upgrade(database_url)
    before = (tmp_path / "recsys.db").read_bytes()
    stale = tmp_path / "counter_12345.db"
    stale.write_bytes(b"")
    env = service_env(database_url, tmp_path / "artifacts", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    command = [sys.executable, "-m", "recsys", "serve", "--port", str(free_port())]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "holds files that are not metrics (recsys.db)" in " ".join(done.stderr.split())
    assert (tmp_path / "recsys.db").read_bytes() == before
    assert stale.exists()  # nothing removed at all

    folder = tmp_path / "metrics"
    folder.mkdir()
    stale = folder / "gauge_liveall_12345.db"
    stale.write_bytes(b"")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    with serving(env, tmp_path / "server.log") as base:
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200
        assert not stale.exists()  # a previous run's metrics file


@pytest.mark.slow
def test_a_killed_workers_series_leave_the_metrics(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'recsys.db'}"
    upgrade(database_url)
    ranking_version(make_engine(database_url), tmp_path / "artifacts")
    env = service_env(database_url, tmp_path / "artifacts")
    log = tmp_path / "server.log"
    with serving(env, log, workers=2, wait_for="/ready", deaths=1) as base:

        def live() -> set[str]:
            return worker_pids(httpx.get(f"{base}/metrics", timeout=10).text)

        wait_for_workers(base, 2)
        pids = live()
        killed = min(pids)
        # Stopped, it cannot answer the supervisor's health check, which then waits on it;
        # killed in that wait, it must still be seen dead (it once went unseen for 300 s).
        os.kill(int(killed), signal.SIGSTOP)
        time.sleep(2)
        os.kill(int(killed), signal.SIGKILL)
        deadline = time.monotonic() + 120
        while killed in (pids := live()) or len(pids) < 2:  # restarted, under a new pid
            assert time.monotonic() < deadline, f"reported: {sorted(pids)}; {killed} killed"
            time.sleep(0.5)
