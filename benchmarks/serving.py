"""Serving at scale: time to ready, memory per worker, latency and throughput.

    python benchmarks/serving.py                       # MovieLens-100k (the quickstart data)
    python benchmarks/serving.py --sizes ml100k,3m     # plus a synthetic 3M-rating database
    python benchmarks/serving.py --sizes 20m --duration 20
    python benchmarks/serving.py --workers 2           # one worker count only
    python benchmarks/serving.py --sizes 20m --data /tmp/serving --prepare-only  # then
    python benchmarks/serving.py --sizes 20m --data /tmp/serving   # measure, reusing it

For each size: build the database (ML-100k: `recsys quickstart --no-serve`;
synthetic: fixed seed, Zipf-like item popularity, ingested with `recsys ingest`,
then both objectives trained for one epoch); then, for each worker count (1 and 2
by default, on the same database), start `recsys serve --workers N` and report the
seconds until its last worker is ready, the largest worker's memory (RSS, USS and PSS:
the serving snapshot and the weights are mapped and shared), and wrk's throughput
and p50/p99 for recommendations of random known users. Beside it, in the same run and
with the same worker count, a bare FastAPI app answers a constant same-shape payload
through the same response model: the ratio of the two is what the service's own
work costs. Needs wrk (Debian's package).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import free_port, run_wrk, wait_ready

SIZES = {  # ratings, users, items
    "3m": (3_000_000, 250_000, 25_000),
    "20m": (20_000_000, 1_000_000, 100_000),
}
LUA = """
math.randomseed(42)
request = function()
  return wrk.format("GET", "/users/" .. math.random(1, {n_users}) .. "/recommendations?n=10")
end
"""


def constant_app() -> object:
    """A bare FastAPI app answering a fixed 10-item payload through the same response model."""
    from fastapi import FastAPI

    from api.schemas import Recommendations

    app = FastAPI()
    payload = {
        "user_id": "1",
        "model_version": 1,
        "fallback": None,
        "items": [
            {
                "item_id": str(i),
                "title": f"A film of some length, number {i} (1996)",
                "genres": ["Drama", "Romance"],
                "score": 0.123456789 * i,
                "because_you_liked": "Another film of some length (1995)",
            }
            for i in range(10)
        ],
    }

    @app.get("/users/{user_id}/recommendations", response_model=Recommendations)
    async def constant(user_id: str) -> dict:
        return payload

    return app


def synthetic(folder: Path, n_ratings: int, n_users: int, n_items: int) -> Path:
    """Ratings with Zipf-like item popularity (fixed seed), as a parquet file."""
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.9
    items = rng.choice(n_items, size=n_ratings, p=weights / weights.sum())
    users = rng.integers(0, n_users, size=n_ratings)
    frame = pd.DataFrame({"user_id": users + 1, "item_id": items + 1})
    frame = frame.drop_duplicates(["user_id", "item_id"])
    frame["rating"] = rng.integers(1, 6, size=len(frame)).astype(np.float32)
    frame["timestamp"] = rng.integers(880_000_000, 890_000_000, size=len(frame))
    path = folder / "ratings.parquet"
    frame.to_parquet(path)
    return path


def wait_all_ready(
    url: str, log: Path, workers: int, started: float, seconds: float
) -> list[float]:
    """Until every worker has loaded its models (one worker answering /ready says
    nothing of the others, which would still be loading while wrk runs); the seconds
    from ``started`` until each worker said so, first first."""
    deadline = started + seconds
    ready: list[float] = []
    while len(ready) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all {workers} workers were ready within {seconds} s")
        said = log.read_text().count("Application startup complete")
        ready += [time.monotonic() - started] * (said - len(ready))
        time.sleep(0.05)
    wait_ready(url, seconds)
    return ready


def memory_mib(pid: int) -> dict[str, float]:
    """A process's resident memory (RSS), what it alone holds (USS: private pages) and
    its proportional share (PSS: shared pages divided among the processes mapping
    them, e.g. a snapshot mapped by every worker), from /proc/<pid>/smaps_rollup."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0])
    private = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"] / 1024, "uss": private / 1024, "pss": fields["Pss"] / 1024}


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def prepare(size: str, folder: Path, env: dict[str, str], recsys: str) -> int:
    """Build the database of ``size`` (unless ``folder`` holds it from an earlier run of
    ``--prepare-only``); returns its number of users."""
    if (folder / "users").exists():
        return int((folder / "users").read_text())
    n_users = _build(size, folder, env, recsys)
    (folder / "users").write_text(str(n_users))
    return n_users


def _build(size: str, folder: Path, env: dict[str, str], recsys: str) -> int:
    if size == "ml100k":
        subprocess.run([recsys, "quickstart", "--no-serve"], env=env, check=True)
        return 943
    n_ratings, n_users, n_items = SIZES[size]
    path = synthetic(folder, n_ratings, n_users, n_items)
    subprocess.run([recsys, "db", "upgrade"], env=env, check=True)
    subprocess.run([recsys, "ingest", "ratings", str(path)], env=env, check=True)
    for objective in ("rating", "ranking"):
        command = [recsys, "train", "--objective", objective, "--epochs", "1"]
        subprocess.run(command, env=env, check=True)
    return n_users


def measure_size(
    size: str, duration: int, connections: int, worker_counts: list[int], data: Path | None
) -> dict[int, dict[str, float]]:
    """Build the database of ``size`` once; the figures of each worker count on it."""
    if data is not None:
        folder = data / size
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"recsys-serving-{size}-"))
    env = {
        **os.environ,
        "RECSYS_DATABASE_URL": f"sqlite:///{folder / 'recsys.db'}",
        "RECSYS_ARTIFACT_DIR": str(folder / "artifacts"),
    }
    recsys = str(Path(sys.executable).with_name("recsys"))
    n_users = prepare(size, folder, env, recsys)
    if not worker_counts:
        return {}
    script = folder / "users.lua"
    script.write_text(LUA.replace("{n_users}", str(n_users)))
    return {
        workers: measure(folder, env, script, duration, connections, workers)
        for workers in worker_counts
    }


def measure(
    folder: Path, env: dict[str, str], script: Path, duration: int, connections: int, workers: int
) -> dict[str, float]:
    """Serve with ``workers`` (and the constant app with as many), every worker ready and
    warmed up, then wrk on both."""
    recsys = str(Path(sys.executable).with_name("recsys"))
    port, constant_port = free_port(), free_port()
    log = folder / f"serve-{workers}.log"
    started = time.monotonic()
    server = subprocess.Popen(
        [recsys, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    constant = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "serving:constant_app", "--factory", "--port",
         str(constant_port), "--workers", str(workers), "--log-level", "warning"],
        cwd=Path(__file__).resolve().parent,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        ready = wait_all_ready(url, log, workers, started, seconds=1800)
        constant_url = f"http://127.0.0.1:{constant_port}"
        run_wrk(url, 2, connections, script)  # warm-up
        run_wrk(f"{constant_url}/users/1/recommendations", 2, connections, None)
        served = run_wrk(url, duration, connections, script)
        fixed = run_wrk(f"{constant_url}/users/1/recommendations", duration, connections, None)
        # After the run, with what requests touch paged in. One worker: uvicorn serves in
        # its own process, with no children.
        memory = [memory_mib(pid) for pid in workers_of(server.pid) or [server.pid]]
    finally:
        for process in (server, constant):
            process.terminate()
            process.wait(timeout=60)
    return {
        "ready": max(ready),
        "rss": max(m["rss"] for m in memory),
        "uss": max(m["uss"] for m in memory),
        "pss": max(m["pss"] for m in memory),
        "rps": served["rps"],
        "p50": served["p50"],
        "p99": served["p99"],
        "errors": served["errors"] + served["socket_errors"],
        "constant_rps": fixed["rps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="ml100k")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument(
        "--data",
        type=Path,
        help="keep each size's database in DATA/<size> and reuse it in later runs (the "
        "20M one takes half an hour to build)",
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="build the databases (with --data), no serving"
    )
    args = parser.parse_args()
    counts = [] if args.prepare_only else [int(n) for n in args.workers.split(",")]
    rows = {size: measure_size(size, args.duration, args.connections, counts, args.data)
            for size in args.sizes.split(",")}  # fmt: skip
    if args.prepare_only:
        return
    print(
        f"recsys serve --workers N; wrk -t2 -c{args.connections} -d{args.duration}s on "
        f"loopback, {os.cpu_count()} cores (wrk shares them); {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        "ready: seconds from `recsys serve` until its last worker is ready; memory: the "
        "largest worker's, after the run (USS: its private pages; PSS: shared ones divided)"
    )
    print(
        f"{'size':<8} {'workers':>7} {'ready s':>8} {'RSS MiB':>8} {'USS MiB':>8} "
        f"{'PSS MiB':>8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'constant':>9} {'ratio':>6} {'vs 1':>5}"
    )
    for size, by_workers in rows.items():
        single = by_workers.get(1, {}).get("rps")
        for workers, r in by_workers.items():
            scaling = f"{r['rps'] / single:>5.2f}" if single else f"{'':>5}"
            print(
                f"{size:<8} {workers:>7} {r['ready']:>8.1f} {r['rss']:>8.0f} {r['uss']:>8.0f} "
                f"{r['pss']:>8.0f} {r['rps']:>8.0f} "
                f"{r['p50']:>7.2f} {r['p99']:>7.2f} {r['errors']:>6.0f} "
                f"{r['constant_rps']:>9.0f} {r['rps'] / r['constant_rps']:>6.2f} {scaling}"
            )


if __name__ == "__main__":
    main()
