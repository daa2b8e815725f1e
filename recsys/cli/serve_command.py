"""The command that serves the HTTP API."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import tempfile
from pathlib import Path

import typer

from recsys.cli.console import fail
from recsys.settings import get_settings
from recsys.thread_limits import thread_environment

WORKER_STARTUP_SECONDS = 300
# The files prometheus_client's multiprocess mode writes: counter_123.db,
# gauge_liveall_123.db, histogram_123.db...
METRICS_FILE = re.compile(r"(counter|gauge_[a-z]+|histogram|summary)_\d+\.db")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def metrics_folder() -> Path:
    """The folder where every worker writes its Prometheus values (see api.metrics): the
    one PROMETHEUS_MULTIPROC_DIR names, rid of a previous run's metrics files, else a new
    one. Set before any worker imports prometheus_client.

    A named folder must hold nothing else: /metrics reads every ``*.db`` file in it, and
    a database kept there would be taken for metrics (and was once deleted as stale).
    """
    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if named:
        folder = Path(named)
        folder.mkdir(parents=True, exist_ok=True)
        others = sorted(p.name for p in folder.iterdir() if not METRICS_FILE.fullmatch(p.name))
        if others:
            listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if others[5:] else "")
            raise fail(
                f"PROMETHEUS_MULTIPROC_DIR={folder} holds files that are not metrics "
                f"({listed}): name an empty folder of its own; nothing was removed"
            )
        for stale in folder.iterdir():
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="recsys-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    insecure: bool = typer.Option(
        False, help="Listen beyond loopback without RECSYS_API_KEY (anyone who reaches it writes)."
    ),
    access_log: bool = typer.Option(
        False,
        help="Log a line per request (uvicorn's access log). Off by default: formatting it "
        "cost 7% of a worker's time per request, and /metrics counts requests by route "
        "and status.",
    ),
) -> None:
    """Serve the HTTP API with uvicorn (the active model version, loaded at start)."""
    if not is_loopback(host) and get_settings().api_key is None and not insecure:
        raise fail(
            f"refusing to serve on {host} without RECSYS_API_KEY: anyone who reaches the port "
            "could write ratings and swap models; set the key, or pass --insecure"
        )
    created = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    folder = metrics_folder()
    # Before any worker starts: its BLAS/OpenMP pools start this small (recsys.thread_limits).
    os.environ.update(thread_environment(get_settings().api_torch_threads))
    # Only this command needs the server.
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from api.worker_supervisor import WorkerSupervisor

    config = uvicorn.Config(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # uvicorn kills a worker that does not answer its supervisor's ping in time
        # (5 s by default); starting one imports torch and loads every active model,
        # which holds the GIL for seconds on a busy machine: it was killed and
        # restarted over and over, leaving one worker of two serving.
        timeout_worker_healthcheck=WORKER_STARTUP_SECONDS,
        # httptools with bounds on a request's head: its size and its time.
        http="api.http_protocol:BoundedHttpToolsProtocol",
        access_log=access_log,
    )
    try:
        if workers > 1:
            WorkerSupervisor(config, sockets=[config.bind_socket()]).run()
        else:
            server = uvicorn.Server(config)
            server.run()
            if not server.started:
                raise typer.Exit(STARTUP_FAILURE)
    finally:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
