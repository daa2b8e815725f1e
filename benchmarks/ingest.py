"""Ingestion and data-set build figures: MovieLens-100k, and a large synthetic CSV.

    python benchmarks/ingest.py                       # SQLite in a temp folder, 2M-row CSV
    python benchmarks/ingest.py --rows 20000000       # the 20M-row memory check
    python benchmarks/ingest.py --database-url postgresql+psycopg://...   # an empty database

Prints load time, rows/second, data-set build time and the process's peak memory
(the chunked path keeps it bounded whatever the file size).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.ratings import read_ratings
from recsys.db import movielens
from recsys.db.engine import make_engine
from recsys.db.ingest import ingest
from recsys.db.migrate import upgrade
from recsys.db.sources import open_table


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_synthetic_csv(path: Path, n_rows: int, n_users: int, n_items: int) -> None:
    """Unique (user, item) pairs with ratings and times, written in blocks."""
    rng = np.random.default_rng(0)
    block = 1_000_000
    with path.open("w") as handle:
        handle.write("user_id,item_id,rating,timestamp\n")
        for start in range(0, n_rows, block):
            rows = np.arange(start, min(start + block, n_rows), dtype=np.int64)
            # A bijection row -> (user, item) keeps pairs unique without a set in memory.
            users, items = rows % n_users, (rows // n_users * 7919 + rows) % n_items
            pd.DataFrame(
                {
                    "user_id": users,
                    "item_id": items,
                    "rating": rng.integers(1, 11, len(rows)) / 2,
                    "timestamp": 880_000_000 + rows,
                }
            ).to_csv(handle, header=False, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument(
        "--database-url", default=None, help="an empty database; default temp SQLite"
    )
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        print(f"database: {engine.url.render_as_string(hide_password=True)}")

        started = time.perf_counter()
        movielens.load(engine, args.chunk_rows)
        print(f"movielens-100k load:        {time.perf_counter() - started:6.2f} s")
        started = time.perf_counter()
        movielens.load(engine, args.chunk_rows)
        print(f"movielens-100k re-load:     {time.perf_counter() - started:6.2f} s (no changes)")
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            table = read_ratings(engine)
            timings.append(time.perf_counter() - started)
        print(
            f"movielens-100k data set:    {min(timings):6.3f} s best of 5, "
            f"median {np.median(timings):.3f} s ({len(table):,} ratings)"
        )

        if args.rows:
            csv = Path(folder) / "synthetic.csv"
            n_users, n_items = max(args.rows // 20, 1), max(args.rows // 200, 1)
            write_synthetic_csv(csv, args.rows, n_users, n_items)
            size_mib = csv.stat().st_size / 2**20
            rss_before = peak_rss_mib()
            started = time.perf_counter()
            report = ingest(engine, open_table(csv, args.chunk_rows))
            seconds = time.perf_counter() - started
            print(
                f"synthetic CSV ingest:       {seconds:6.2f} s for {report.ratings_read:,} rows "
                f"({size_mib:,.0f} MiB, {report.ratings_read / seconds:,.0f} rows/s)"
            )
            print(f"peak RSS before / after:    {rss_before:,.0f} MiB / {peak_rss_mib():,.0f} MiB")
            started = time.perf_counter()
            table = read_ratings(engine)
            print(
                f"synthetic data set build:   {time.perf_counter() - started:6.2f} s "
                f"({len(table):,} ratings, {table.n_users:,} users, {table.n_items:,} items)"
            )
            print(f"peak RSS at the end:        {peak_rss_mib():,.0f} MiB")
        engine.dispose()


if __name__ == "__main__":
    main()
