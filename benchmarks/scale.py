"""Every stage at MovieLens-20M size on one machine: one table of seconds, rows/s, peak RSS.

    python benchmarks/scale.py --sizes 3m                    # SQLite only
    python benchmarks/scale.py --sizes 3m,20m --postgres-url postgresql+psycopg://.../postgres
    python benchmarks/scale.py --sizes 20m --postgres-url ... --postgres-only  # its rows alone

``--postgres-url`` names a server's maintenance database: the benchmark creates a
database per size there and drops it at the end.

Synthetic ratings with a fixed seed: 3M ratings (250,000 users, 25,000 items) or
20M (1,000,000 users, 100,000 items); items drawn with Zipf-like popularity, each
(user, item) pair once, ratings from a hidden low-rank taste, times interleaved at random.
Stages: write the CSV; ingest it into an empty database (all ids new), then
again (every row an update); build the data set; one epoch of the rating dot
model and one of the ranking dot model (512 negatives, then 128), validation included;
the whole rating run of `recsys train` (fit, choose on the hold-out, refit: what it
chose is printed beside); one iALS fit with the defaults of a catalog this size (read
from the CSV). ``--ials-only`` and ``--train-only`` write the CSV and run just that stage.
Each stage runs in its own process, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

SIZES = {"3m": (3_000_000, 250_000, 25_000), "20m": (20_000_000, 1_000_000, 100_000)}


def write_csv(path: Path, n_ratings: int, n_users: int, n_items: int) -> None:
    """Unique pairs: each user's items are distinct draws from a Zipf-like popularity."""
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    taste_users = rng.normal(size=(n_users, 4)).astype(np.float32)
    taste_items = rng.normal(size=(n_items, 4)).astype(np.float32)
    per_user = rng.multinomial(n_ratings, np.full(n_users, 1 / n_users))
    with path.open("w") as handle:
        handle.write("user_id,item_id,rating,timestamp\n")
        block = 50_000
        for start in range(0, n_users, block):
            users = np.arange(start, min(start + block, n_users))
            counts = np.minimum(per_user[users], n_items)
            drawn = rng.choice(n_items, size=(len(users), int(counts.max())), p=popularity)
            rows_u, rows_i = [], []
            for row, user in enumerate(users):
                items = np.unique(drawn[row])[: counts[row]]
                rows_u.append(np.full(len(items), user))
                rows_i.append(items)
            u, i = np.concatenate(rows_u), np.concatenate(rows_i)
            score = np.einsum("ij,ij->i", taste_users[u], taste_items[i])
            rating = np.clip(np.round(3 + score), 1, 5)
            pd.DataFrame(
                {
                    "user_id": u,
                    "item_id": i,
                    "rating": rating,
                    "timestamp": 900_000_000 + rng.integers(0, 100 * n_ratings, len(u)),
                }
            ).to_csv(handle, header=False, index=False)


def write_changed_csv(path: Path, out: Path) -> None:
    """The same pairs, each rated a second later: re-ingesting it updates every row."""
    with out.open("w") as handle:
        handle.write("user_id,item_id,rating,timestamp\n")
        for chunk in pd.read_csv(path, chunksize=1_000_000):
            chunk["timestamp"] += 1
            chunk.to_csv(handle, header=False, index=False)


def stage(name: str, args: dict) -> dict:
    """Run one stage in a fresh process; its result and peak RSS."""
    done = subprocess.run(
        [sys.executable, __file__, "--stage", name, "--args", json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"stage {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_stage(name: str, args: dict) -> dict:
    started = time.perf_counter()
    rows, note = 0, ""
    if name == "csv":
        write_csv(Path(args["path"]), *SIZES[args["size"]])
        rows = SIZES[args["size"]][0]
    elif name == "changed csv":
        write_changed_csv(Path(args["path"]), Path(args["out"]))
        rows = SIZES[args["size"]][0]
    elif name == "ingest":
        from recsys.db.engine import make_engine
        from recsys.db.ingest import ingest
        from recsys.db.migrate import upgrade
        from recsys.db.sources import open_table

        upgrade(args["url"])
        engine = make_engine(args["url"])
        started = time.perf_counter()
        report = ingest(engine, open_table(Path(args["path"]), 50_000))
        rows = report.ratings_read
        written = report.ratings_inserted if args["expect"] == "new" else report.ratings_updated
        if written != rows:
            raise RuntimeError(f"expected every row {args['expect']}: {report}")
    elif name == "dataset":
        from recsys.collab.dataset import CollabData
        from recsys.data.ratings import read_ratings
        from recsys.db.engine import make_engine

        table = read_ratings(make_engine(args["url"]))
        data = CollabData.from_table(table, valid_pct=0.1, split="time")
        rows = data.dls.train.n_rows + data.dls.valid.n_rows
    elif name in ("rating epoch", "ranking epoch"):
        import torch

        from recsys.collab.collab_learner import collab_learner
        from recsys.collab.dataset import CollabData
        from recsys.collab.ranking import ranking_learner
        from recsys.data.ratings import read_ratings
        from recsys.db.engine import make_engine

        table = read_ratings(make_engine(args["url"]))
        data = CollabData.from_table(table, valid_pct=0.1, split="time")
        torch.manual_seed(0)
        if name == "rating epoch":
            learn = collab_learner(data, progress=False, device="cpu")
        else:
            learn = ranking_learner(
                data,
                model="dot",
                n_negatives=args.get("n_negatives"),
                progress=False,
                device="cpu",
            )
        started = time.perf_counter()
        learn.fit_one_cycle(1)
        rows = data.dls.train.n_rows
    elif name == "train rating":
        import torch

        from recsys.data.ratings import RatingsTable
        from recsys.jobs.training_job import TrainConfig, fit_select_refit

        table = RatingsTable.from_frame(pd.read_csv(args["path"]))
        started = time.perf_counter()
        fitted = fit_select_refit(table, TrainConfig(objective="rating"), progress=False)
        rows = len(table)
        metrics = fitted.selected.served_metrics()
        note = f"{fitted.config.model}, {fitted.settings}, hold-out RMSE {metrics['rmse']:.4f}"
    elif name == "ials fit":
        import torch

        from recsys.collab.dataset import CollabData
        from recsys.collab.ranking import ranking_learner
        from recsys.data.ratings import RatingsTable

        table = RatingsTable.from_frame(pd.read_csv(args["path"]))
        data = CollabData.from_table(table, valid_pct=0.0)
        del table
        torch.manual_seed(0)
        learn = ranking_learner(data, model="ials", progress=False, device=args["device"])
        started = time.perf_counter()
        learn.fit()  # the defaults of a catalog this size: nothing to choose on
        rows = data.dls.train.n_rows
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "rows": rows, "peak_mib": peak, "note": note}


@contextmanager
def postgres_database(server_url: str | None) -> Iterator[str | None]:
    """A new database on the server (reliability.py's), dropped afterwards; None without
    a server."""
    if server_url is None:
        yield None
        return
    from reliability import new_postgres_database
    from sqlalchemy import make_url, text

    from recsys.db.engine import make_engine

    url = new_postgres_database(server_url)
    try:
        yield url
    finally:
        admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            name = make_url(url).database
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="3m", help=f"comma-separated, of {', '.join(sorted(SIZES))}"
    )
    parser.add_argument(
        "--postgres-url", default=None, help="a PostgreSQL server's maintenance database"
    )
    parser.add_argument(
        "--postgres-only", action="store_true", help="write the files, ingest into PostgreSQL"
    )
    parser.add_argument(
        "--ials-only", action="store_true", help="write the CSV, then one iALS fit from it"
    )
    parser.add_argument(
        "--train-only", action="store_true", help="write the CSV, then recsys train's rating run"
    )
    parser.add_argument("--device", default="cpu", help="where the iALS fit runs")
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--args", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.stage:
        print(json.dumps(run_stage(options.stage, json.loads(options.args))))
        return
    sizes = options.sizes.split(",")
    unknown = set(sizes) - set(SIZES)
    if unknown:
        parser.error(f"unknown sizes {sorted(unknown)}: choose from {sorted(SIZES)}")
    for size in sizes:
        n_ratings, n_users, n_items = SIZES[size]
        print(f"{size}: {n_ratings:,} ratings, {n_users:,} users, {n_items:,} items")
    print(f"{'size':<5} {'stage':<34} {'seconds':>9} {'rows/s':>12} {'peak MiB':>9}")
    for size in sizes:
        with (
            tempfile.TemporaryDirectory() as folder,
            postgres_database(options.postgres_url) as postgres_url,
        ):
            for name, label, args in plan(size, Path(folder), postgres_url, options):
                result = stage(name, args)
                rate = result["rows"] / result["seconds"] if result["seconds"] else 0.0
                print(
                    f"{size:<5} {label:<34} {result['seconds']:>9.1f} {rate:>12,.0f} "
                    f"{result['peak_mib']:>9,.0f}  {result['note']}".rstrip(),
                    flush=True,
                )


def plan(
    size: str, folder: Path, postgres_url: str | None, options: argparse.Namespace
) -> list[tuple[str, str, dict]]:
    """The stages of one size, in order: (stage, label, its arguments)."""
    csv = str(folder / "ratings.csv")
    changed = str(folder / "ratings-changed.csv")
    sqlite = f"sqlite:///{folder / 'recsys.db'}"
    ials = (
        "ials fit",
        "one iALS fit (defaults, CSV read)",
        {"path": csv, "device": options.device},
    )
    train = ("train rating", "recsys train, rating (CSV read)", {"path": csv})
    steps = [("csv", "write the CSV", {"path": csv, "size": size})]
    if options.ials_only:
        return [*steps, ials]
    if options.train_only:
        return [*steps, train]
    again = {"path": csv, "size": size, "out": changed}
    steps.append(("changed csv", "write it again, times changed", again))
    if not options.postgres_only:
        steps += [
            ("ingest", "ingest SQLite (all new)", {"path": csv, "url": sqlite, "expect": "new"}),
            (
                "ingest",
                "ingest SQLite (all updates)",
                {"path": changed, "url": sqlite, "expect": "updates"},
            ),
        ]
    if postgres_url is not None:
        steps += [
            (
                "ingest",
                "ingest PostgreSQL (all new)",
                {"path": csv, "url": postgres_url, "expect": "new"},
            ),
            (
                "ingest",
                "ingest PostgreSQL (all updates)",
                {"path": changed, "url": postgres_url, "expect": "updates"},
            ),
        ]
    if not options.postgres_only:
        steps += [
            ("dataset", "build the data set (SQLite)", {"url": sqlite}),
            ("rating epoch", "one epoch, rating dot (+valid)", {"url": sqlite}),
            ("ranking epoch", "one epoch, ranking dot (+valid)", {"url": sqlite}),
            (
                "ranking epoch",
                "the same, 128 negatives",
                {"url": sqlite, "n_negatives": 128},
            ),
            train,
            ials,
        ]
    return steps


if __name__ == "__main__":
    main()
