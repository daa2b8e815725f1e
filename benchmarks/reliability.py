"""Two probes of the reliability round, at ten times the size and rounds that found them.

    python benchmarks/reliability.py                                  # SQLite only
    python benchmarks/reliability.py --postgres-url postgresql+psycopg://.../postgres

1. A big ingest followed by every worker (was: each of 2 workers folded in 100,000 of
   120,000 new ratings, and 72 of 400 answers offered items already rated). The
   quickstart database (MovieLens-100k) is served by `recsys serve --workers 2`; then
   `recsys ingest` writes 1,200,000 new ratings of known users and items in one write,
   and the probe counts what the workers folded in (``recsys_followed_ratings_total``)
   and how many of 4,000 answers offer an item the user has rated.
2. Two activations at once (was: two active rating versions in 1 of 20 rounds through
   the API and 3 of 10 with the calls aligned, on PostgreSQL): 200 rounds of two
   concurrent ``POST /models/{id}/activate``, and 100 rounds of two ``activate`` calls
   released together by a barrier; the probe counts rounds that end with two active
   versions and activations refused.

Each database gets its own temporary folder (and, for PostgreSQL, a new database on
the server given). Prints one table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import free_port
from serving import wait_all_ready

from recsys.data.ratings import read_ratings
from recsys.db.engine import make_engine
from recsys.db.tables import model_versions
from recsys.jobs.model_versions import ActivationError, activate, list_versions

NEW_RATINGS = 1_200_000
ANSWERS = 4_000
API_ROUNDS, ALIGNED_ROUNDS = 200, 100
KEY = "probe-key"


def followed(base: str) -> float:
    body = httpx.get(f"{base}/metrics", headers={"X-API-Key": KEY}, timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "recsys_followed_ratings_total"
    )


def unrated_pairs(engine: Engine, n: int) -> pd.DataFrame:
    """``n`` (user, item) pairs of known users and items that nobody rated yet."""
    table = read_ratings(engine)
    n_users, n_items = table.n_users, table.n_items
    rated = set((table.users.numpy() * n_items + table.items.numpy()).tolist())
    free = np.setdiff1d(np.arange(n_users * n_items), np.fromiter(rated, dtype=np.int64))
    chosen = np.random.default_rng(0).choice(free, size=n, replace=False)
    return pd.DataFrame(
        {
            "user_id": table.user_map.ids[chosen // n_items],
            "item_id": table.item_map.ids[chosen % n_items],
            "rating": 3.0,
        }
    )


@contextmanager
def two_workers(env: dict[str, str], log: Path, recsys: str) -> Iterator[str]:
    """`recsys serve --workers 2` until the block ends, both workers ready; its URL."""
    port = free_port()
    server = subprocess.Popen(
        [recsys, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_all_ready(base, log, 2, seconds=600)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=60)


def follow_probe(env: dict[str, str], folder: Path, recsys: str) -> dict[str, object]:
    engine = make_engine(env["RECSYS_DATABASE_URL"])
    pairs = unrated_pairs(engine, NEW_RATINGS)
    path = folder / "new.csv"
    pairs.to_csv(path, index=False)
    with two_workers(env, folder / "serve.log", recsys) as base:
        time.sleep(2)  # both workers polling
        before = followed(base)
        started = time.monotonic()
        subprocess.run([recsys, "ingest", "ratings", str(path)], env=env, check=True)
        ingested = time.monotonic() - started
        deadline = time.monotonic() + 600
        while (count := followed(base) - before) < 2 * NEW_RATINGS:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        caught_up = time.monotonic() - started - ingested
        time.sleep(1.0)
        count = followed(base) - before
        table = read_ratings(engine)
        rated: dict[str, set[str]] = {}
        for user, item in zip(
            table.user_map.ids[table.users.numpy()],
            table.item_map.ids[table.items.numpy()],
            strict=True,
        ):
            rated.setdefault(str(user), set()).add(str(item))
        users = np.random.default_rng(1).choice(sorted(rated), size=ANSWERS)

        def offers_rated(user: str) -> bool:
            answer = httpx.get(f"{base}/users/{user}/recommendations?n=10", timeout=30)
            answer.raise_for_status()
            return any(entry["item_id"] in rated[user] for entry in answer.json()["items"])

        with ThreadPoolExecutor(8) as pool:
            bad = sum(pool.map(offers_rated, users))
    engine.dispose()
    return {
        "followed": int(count),
        "expected": 2 * NEW_RATINGS,
        "ingest_s": ingested,
        "caught_up_s": caught_up,
        "offering_rated": int(bad),
    }


def activation_probe(env: dict[str, str], folder: Path, recsys: str) -> dict[str, object]:
    """Needs two ready rating versions: quickstart trained one, train a second."""
    command = [recsys, "train", "--objective", "rating", "--epochs", "1", "--promote", "never"]
    subprocess.run(command, env=env, check=True, capture_output=True)
    engine = make_engine(env["RECSYS_DATABASE_URL"])
    ready = [v.id for v in list_versions(engine) if v.objective == "rating" and v.status == "ready"]
    pair = ready[:2]

    def n_active() -> int:
        with engine.connect() as connection:
            query = select(func.count()).where(
                model_versions.c.is_active, model_versions.c.objective == "rating"
            )
            return connection.execute(query).scalar_one()

    api_double = api_refused = aligned_double = aligned_refused = 0
    with (
        two_workers(env, folder / "serve-activate.log", recsys) as base,
        ThreadPoolExecutor(2) as pool,
    ):
        for _ in range(API_ROUNDS):
            answers = list(
                pool.map(
                    lambda v: (
                        httpx.post(
                            f"{base}/models/{v}/activate",
                            headers={"X-API-Key": KEY},
                            timeout=60,
                        ).status_code
                    ),
                    pair,
                )
            )
            api_refused += sum(status != 200 for status in answers)
            api_double += n_active() > 1
        for _ in range(ALIGNED_ROUNDS):
            start = threading.Barrier(2)

            def aligned(version_id: int, start: threading.Barrier = start) -> bool:
                start.wait()
                try:
                    activate(engine, version_id)
                except ActivationError:
                    return False
                return True

            aligned_refused += sum(not ok for ok in pool.map(aligned, pair))
            aligned_double += n_active() > 1
    engine.dispose()
    return {
        "api_rounds": API_ROUNDS,
        "api_double": api_double,
        "api_refused": api_refused,
        "aligned_rounds": ALIGNED_ROUNDS,
        "aligned_double": aligned_double,
        "aligned_refused": aligned_refused,
    }


def prepare(database_url: str, folder: Path, recsys: str) -> dict[str, str]:
    env = {
        **os.environ,
        "RECSYS_DATABASE_URL": database_url,
        "RECSYS_ARTIFACT_DIR": str(folder / "artifacts"),
        "RECSYS_API_KEY": KEY,
    }
    subprocess.run([recsys, "quickstart", "--no-serve"], env=env, check=True, capture_output=True)
    return env


def new_postgres_database(server_url: str) -> str:
    name = f"recsys_probe_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres-url", default=None, help="a PostgreSQL server's database")
    options = parser.parse_args()
    recsys = str(Path(sys.executable).with_name("recsys"))
    databases: dict[str, str | None] = {"SQLite": None}
    if options.postgres_url:
        databases["PostgreSQL"] = options.postgres_url
    print(f"reliability probes, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores")
    print(
        f"{'database':<11} {'followed':>10} {'of':>10} {'ingest s':>8} {'caught up s':>11} "
        f"{'answers offering rated':>22}"
    )
    for name, server_url in databases.items():
        follow = follow_probe(*fresh(name, server_url, recsys), recsys)
        print(
            f"{name:<11} {follow['followed']:>10,} {follow['expected']:>10,} "
            f"{follow['ingest_s']:>8.1f} {follow['caught_up_s']:>11.1f} "
            f"{follow['offering_rated']:>15,} / {ANSWERS:,}",
            flush=True,
        )
    print(
        f"{'database':<11} {'API rounds, 2 active':>20} {'refused':>7} "
        f"{'aligned rounds, 2 active':>24} {'refused':>7}"
    )
    for name, server_url in databases.items():
        act = activation_probe(*fresh(name, server_url, recsys), recsys)
        print(
            f"{name:<11} {act['api_double']:>11} / {act['api_rounds']:<6} {act['api_refused']:>7} "
            f"{act['aligned_double']:>15} / {act['aligned_rounds']:<6} {act['aligned_refused']:>7}",
            flush=True,
        )


def fresh(name: str, server_url: str | None, recsys: str) -> tuple[dict[str, str], Path]:
    """A new quickstart database (and its folder) for one probe."""
    folder = Path(tempfile.mkdtemp(prefix=f"recsys-probe-{name.lower()}-"))
    url = new_postgres_database(server_url) if server_url else f"sqlite:///{folder / 'recsys.db'}"
    return prepare(url, folder, recsys), folder


if __name__ == "__main__":
    main()
