"""Throughput of `recsys recommend --all`: every user's top-n for a big catalog.

    python benchmarks/export.py [--users 50000] [--items 100000] [--factors 64] [--n 10]

A ranking DotProductBias with random weights (the cost does not depend on what was
learned) and 20 seen items per user, exported to parquet through the same
``export_recommendations`` the command calls. Loading the model from the
database is left out (it is the service's start-up, see benchmarks/serving.py).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

import numpy as np
import torch

from recsys.collab.batch_export import CHUNK_USERS, export_recommendations
from recsys.collab.interactions import Interactions
from recsys.collab.recommender import Recommender
from recsys.data.ids import IdMap
from recsys.models import DotProductBias, DotProductBiasConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=CHUNK_USERS)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = DotProductBias(
        DotProductBiasConfig(args.users, args.items, args.factors, y_range=None)
    ).eval()
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(args.users), 20)
    items = rng.integers(0, args.items, len(users))
    seen = Interactions.from_ratings(
        users, items, np.full(len(users), 5.0, np.float32), args.users, args.items
    )
    recommender = Recommender(
        model,
        IdMap("user", np.arange(args.users).astype(str).astype(object)),
        IdMap("item", np.arange(args.items).astype(str).astype(object)),
        seen,
    )
    with tempfile.TemporaryDirectory() as folder:
        report = export_recommendations(
            recommender, Path(folder) / "recs.parquet", args.n, chunk_users=args.chunk
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{'users':>9} {'items':>8} {'n':>3} {'chunk':>6} {'seconds':>8} {'users/min':>11} "
        f"{'peak MiB':>9}"
    )
    print(
        f"{report.users:>9,} {args.items:>8,} {args.n:>3} {args.chunk:>6} "
        f"{report.seconds:>8.1f} {report.users / report.seconds * 60:>11,.0f} {peak:>9,.0f}"
    )


if __name__ == "__main__":
    main()
