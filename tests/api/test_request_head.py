"""A request head too large or too slow is refused by `recsys serve` itself, in the one
error shape, before the app or the worker's memory pay for it."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx2 as httpx
import pytest

from api.routes.recommendations import MAX_EXCLUDED
from recsys.db.engine import make_engine
from recsys.db.migrate import upgrade
from tests.servers import ranking_version, service_env, serving

pytestmark = pytest.mark.slow


def exchange(base: str, chunks: list[bytes], pause: float = 0.0) -> bytes:
    """Send ``chunks`` on one raw connection (``pause`` seconds apart); what comes back."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        try:
            for chunk in chunks:
                connection.sendall(chunk)
                time.sleep(pause)
        except OSError:  # the server closed the connection while we were still sending
            pass
        answer = b""
        while data := connection.recv(65536):
            answer += data
    return answer


def error_of(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]["code"]


def test_an_oversize_or_endless_request_head_is_refused(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'recsys.db'}"
    upgrade(database_url)
    ranking_version(make_engine(database_url), tmp_path / "artifacts")
    env = service_env(database_url, tmp_path / "artifacts", RECSYS_REQUEST_HEAD_SECONDS="1")
    with serving(env, tmp_path / "server.log", wait_for="/ready") as base:
        huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000_000 + b"\r\n\r\n"
        assert error_of(exchange(base, [huge])) == (431, "header_too_large")
        many = b"".join(b"X-H%d: %s\r\n" % (k, b"b" * 1000) for k in range(100))
        assert error_of(exchange(base, [b"GET /health HTTP/1.1\r\n" + many + b"\r\n"])) == (
            431,
            "header_too_large",
        )
        slow = [b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"X-Slow: 1\r\n"]
        assert error_of(exchange(base, slow, pause=0.6)) == (408, "request_timeout")
        assert exchange(base, []) == b""  # connected and silent: closed
        normal = httpx.get(f"{base}/health", headers={"X-Fine": "c" * 8000}, timeout=10)
        assert normal.status_code == 200
        # The documented maximum of excluded ids, each as long as an id may be, fits
        # (sent raw: the HTTP client here refuses URLs this long).
        most = [("exclude", f"{k:03d}" + "x" * 252) for k in range(MAX_EXCLUDED)]
        assert status_of(base, most) == 200
        assert status_of(base, [*most, ("exclude", "one more")]) == 422


def status_of(base: str, params: list[tuple[str, str]]) -> int:
    """The status of recommendations for u0 with ``params``, on a raw connection."""
    line = f"GET /users/u0/recommendations?{urlencode(params)} HTTP/1.1\r\n"
    answer = exchange(base, [f"{line}Host: x\r\nConnection: close\r\n\r\n".encode()])
    return int(answer.split()[1])
