"""Load test of the recommendation service with wrk, and the 1M-item scale latency.

    python benchmarks/load.py                  # quickstart database in a temp folder
    python benchmarks/load.py --duration 20 --connections 32
    python benchmarks/load.py --scale-only     # just the 1,000,000-item latency

Starts `recsys serve --workers 2` on loopback, then runs wrk (Debian's package)
for a fixed time against (a) recommendations for random known users and (b) the
constant /health endpoint, and prints throughput, p50/p99 latency and errors.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

from recsys.collab import Interactions, Recommender
from recsys.data.ids import IdMap
from recsys.models import DotProductBias, DotProductBiasConfig

LUA = """
math.randomseed(42)
request = function()
  return wrk.format("GET", "/users/" .. math.random(1, 943) .. "/recommendations?n=10")
end
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} was not ready within {seconds} s")


def run_wrk(url: str, duration: int, connections: int, script: Path | None) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"\s{label}\s+([\d.]+)(us|ms|s)\b", output).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency("50%"),
        "p99": latency("99%"),
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),
        "errors": float(errors.group(1)) if errors else 0.0,
        "socket_errors": float(sum(map(int, socket_errors.groups()))) if socket_errors else 0.0,
    }


def load_test(duration: int, connections: int, workers: int) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    folder = Path(tempfile.mkdtemp(prefix="recsys-load-"))
    env = {
        **os.environ,
        "RECSYS_DATABASE_URL": f"sqlite:///{folder / 'recsys.db'}",
        "RECSYS_ARTIFACT_DIR": str(folder / "artifacts"),
    }
    recsys = str(Path(sys.executable).with_name("recsys"))
    subprocess.run([recsys, "quickstart", "--no-serve"], env=env, check=True, capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen(
            [recsys, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(url)
        script = folder / "users.lua"
        script.write_text(LUA)
        run_wrk(f"{url}/health", 2, connections, None)  # warm both workers up
        run_wrk(url, 2, connections, script)
        trivial = run_wrk(f"{url}/health", duration, connections, None)
        recommend = run_wrk(url, duration, connections, script)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"recsys serve --workers {workers}; wrk -t2 -c{connections} -d{duration}s on loopback, "
        f"{os.cpu_count()} cores (wrk shares them)"
    )
    print(
        f"{'endpoint':<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}"
    )
    for name, result in (
        ("GET /health (constant)", trivial),
        ("GET /users/{random}/recommendations?n=10", recommend),
    ):
        print(
            f"{name:<44} {result['rps']:>9.0f} {result['p50']:>8.2f} {result['p99']:>8.2f} "
            f"{result['requests']:>9.0f} {result['errors'] + result['socket_errors']:>7.0f}"
        )
    print(
        f"recommendations throughput / constant endpoint: {recommend['rps'] / trivial['rps']:.2f}"
    )


def scale_latency(n_items: int, n_factors: int, n_requests: int) -> None:
    """Exact top-10 for one user at a time over a synthetic catalog, in process."""
    torch.manual_seed(0)
    n_users = 10_000
    model = DotProductBias(DotProductBiasConfig(n_users, n_items, n_factors))
    rng = np.random.default_rng(0)
    seen_items = rng.integers(0, n_items, size=(n_users, 50))
    seen = Interactions.from_ratings(
        np.repeat(np.arange(n_users), 50), seen_items.ravel(), None, n_users, n_items
    )
    recommender = Recommender(
        model,
        IdMap("user", np.arange(n_users).astype(object)),
        IdMap("item", np.arange(n_items).astype(object)),
        seen,
    )
    timings = []
    for user in rng.integers(0, n_users, n_requests + 10):
        started = time.perf_counter()
        recommender.recommend(int(user), n=10)
        timings.append((time.perf_counter() - started) * 1e3)
    timings = np.array(timings[10:])
    print(
        f"scale: {n_items:,} items x {n_factors} factors, exact top-10 with seen items removed, "
        f"{n_requests} single requests: p50 {np.percentile(timings, 50):.1f} ms, "
        f"p99 {np.percentile(timings, 99):.1f} ms ({torch.get_num_threads()} torch threads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale-only", action="store_true")
    args = parser.parse_args()
    if not args.scale_only:
        load_test(args.duration, args.connections, args.workers)
    scale_latency(1_000_000, 50, 200)


if __name__ == "__main__":
    main()
