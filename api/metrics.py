"""Prometheus metrics: what operators watch, correct across worker processes.

Several uvicorn workers are several processes, each with its own counters; the
prometheus_client multiprocess mode has every process write its values to files
in one folder (``PROMETHEUS_MULTIPROC_DIR``) and ``/metrics`` adds them up.
`recsys serve` points that variable at a fresh folder before the workers start;
without it (tests, an embedded app) the values live in this process.

The metric objects are created at import, as prometheus_client expects; the
folder must be set before the first import of prometheus_client in a worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "recsys_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "recsys_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
MODEL_VERSION = Gauge(
    "recsys_model_version",
    "The model version a worker serves, per objective (one series per worker pid).",
    ["objective"],
    multiprocess_mode="liveall",
)
SWAPS = Counter(
    "recsys_model_swaps_total",
    "Model versions loaded and swapped in, per objective.",
    ["objective"],
)
REFUSED = Counter(
    "recsys_model_versions_refused_total",
    "Active versions whose weights would not load (the previous model kept serving).",
    ["objective"],
)
FEEDBACK = Counter(
    "recsys_feedback_ratings_total",
    "Ratings changed through the API, by outcome: inserted, updated (POST /ratings), "
    "deleted (DELETE /users/{id}/ratings/{item}).",
    ["outcome"],
)
FOLD_INS = Counter(
    "recsys_fold_ins_total", "Recommendations for users the model never saw, folded in."
)
WORKER_THREADS = Gauge(
    "recsys_worker_threads",
    "BLAS/OpenMP threads per pool in each worker (RECSYS_API_TORCH_THREADS): one series "
    "per worker pid and library.",
    ["pool"],
    multiprocess_mode="liveall",
)
FOLLOWED = Counter(
    "recsys_followed_ratings_total",
    "Ratings and tombstones written elsewhere (other workers, replicas, ingest, deletions) "
    "applied to the served models.",
)


def render() -> tuple[bytes, str]:
    """The exposition text of every process's metrics (or this one's alone)."""
    if folder := os.environ.get(MULTIPROC_ENV):
        _forget_dead_workers(Path(folder))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def _forget_dead_workers(folder: Path) -> None:
    """Drop the live gauges of workers that are gone (killed, and restarted under a new
    pid by the supervisor): their last values would otherwise stay in /metrics for good,
    and a stale model version would look like a worker that fell behind."""
    for path in folder.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))
        except PermissionError:  # alive, another user's
            pass


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by its route template
    (``/users/{user_id}/recommendations``, never the raw path, so ids do not become
    label values); a path no route matches is ``unmatched``."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - started)


def worker_stopped() -> None:
    """This worker is shutting down: drop its live gauges (its counters stay counted)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())
