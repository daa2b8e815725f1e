"""Top-10 ranking on MovieLens-100k, per-user temporal split: who picks what users pick next.

    python benchmarks/ranking.py [--device cuda]   # `pip install implicit` adds its rows

Each user's latest 20% of ratings are held out; relevant = held-out rating >= 4;
candidates = items the user did not rate in training. Side by side: the
popularity list; the rating models ranked by predicted rating; the ranking
learners (sampled softmax with three weight seeds, BPR, the deep model); EASE
at three ridge values; and, when the `implicit` package is installed (it is a
benchmark-only dependency), its ALS and BPR, each the best of a small grid.
Ranking learners keep their best-NDCG epoch and the implicit grids pick their
best configuration, both on this held-out split: all tuned the same way.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse
import torch

from recsys import CollabData, collab_learner
from recsys.collab.evaluate import RANKING_METRICS, Scorer, model_scorer, popularity_scorer
from recsys.collab.evaluate import ranking_metrics as measure
from recsys.collab.ranking import ranking_learner
from recsys.data.splits import temporal_split
from recsys.db.movielens import BUNDLE

HEADERS = ("precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate", "coverage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (implicit stays on the CPU)")
    device = parser.parse_args().device
    ratings = pd.read_parquet(BUNDLE / "ratings.parquet").rename(columns={"movie_id": "item_id"})
    split = temporal_split(ratings["user_id"].to_numpy(), ratings["timestamp"].to_numpy(), 0.2)
    data = CollabData.from_df(ratings.iloc[split.train], valid_df=ratings.iloc[split.valid])
    x, y = (t.numpy() for t in data.dls.valid.tensors)
    valid = (x[:, 0], x[:, 1], y)
    print(
        f"{data.dls.train.n_rows:,} training ratings; {len(y):,} held out "
        f"({data.n_valid_dropped} more dropped: item unseen in training)"
    )
    print(f"{'model':<44}" + "".join(f"{h:>13}" for h in HEADERS) + f"{'train s':>10}")

    def metrics(scorer: Scorer) -> dict[str, float]:
        return measure(scorer, data.seen, *valid, data.n_items, k=10)

    def report(name: str, results: dict[str, float], seconds: float) -> None:
        cells = "".join(f"{results[n]:>13.4f}" for n in RANKING_METRICS)
        print(f"{name:<44}{cells}{seconds:>10.2f}", flush=True)

    def timed(fit: Callable[[], Scorer]) -> tuple[dict[str, float], float]:
        started = time.perf_counter()
        scorer = fit()
        seconds = time.perf_counter() - started
        return metrics(scorer), seconds

    report("popularity", metrics(popularity_scorer(data)), 0.0)

    for name, use_nn in (("DotProductBias", False), ("EmbeddingNN", True)):

        def fit_rating(use_nn: bool = use_nn) -> Scorer:
            torch.manual_seed(0)
            learn = collab_learner(data, use_nn=use_nn, progress=False, device=device)
            learn.fit_one_cycle()
            return model_scorer(learn)

        report(f"{name}, rating objective", *timed(fit_rating))

    ndcgs = []
    for label, options, seeds in (
        ("dot, sampled softmax", {}, (0, 1, 2)),
        ("dot, BPR", {"loss": "bpr"}, (0,)),
        ("nn, sampled softmax", {"model": "nn"}, (0,)),
        ("EASE, l2=100", {"model": "ease", "l2": 100.0}, (0,)),
        ("EASE, l2=250 (default)", {"model": "ease"}, (0,)),
        ("EASE, l2=500", {"model": "ease", "l2": 500.0}, (0,)),
    ):
        for seed in seeds:

            def fit_ranking(options: dict = options, seed: int = seed) -> Scorer:
                torch.manual_seed(seed)
                learn = ranking_learner(data, progress=False, device=device, **options)
                learn.fit_one_cycle()
                return model_scorer(learn)

            results, seconds = timed(fit_ranking)
            if label.startswith("dot, sampled"):
                ndcgs.append(results["ndcg"])
            suffix = f", seed {seed}" if len(seeds) > 1 else ""
            report(f"ranking {label}{suffix}", results, seconds)
    print(f"dot, sampled softmax: mean NDCG@10 over seeds {np.mean(ndcgs):.4f}")

    try:
        import implicit  # noqa: F401
    except ImportError:
        print("implicit is not installed: `pip install implicit` adds its ALS and BPR rows")
        return
    train_x, _ = (t.numpy() for t in data.dls.train.tensors)
    user_items = scipy.sparse.csr_matrix(
        (np.ones(len(train_x), dtype=np.float32), (train_x[:, 0], train_x[:, 1])),
        shape=(data.n_users, data.n_items),
    )
    for name, grid in (
        ("implicit ALS", _als_grid()),
        ("implicit BPR", _bpr_grid()),
    ):
        best: tuple[dict[str, float], float, str] | None = None
        for label, make in grid:

            def fit_implicit(make: Callable = make) -> Scorer:
                model = make()
                model.fit(user_items, show_progress=False)
                users, items = (
                    torch.from_numpy(np.asarray(f))
                    for f in (model.user_factors, model.item_factors)
                )
                return lambda rows: users[rows] @ items.T

            results, seconds = timed(fit_implicit)
            if best is None or results["ndcg"] > best[0]["ndcg"]:
                best = (results, seconds, label)
        assert best is not None
        report(f"{name} ({best[2]})", best[0], best[1])


def _als_grid() -> list[tuple[str, Callable]]:
    from implicit.cpu.als import AlternatingLeastSquares

    return [
        (
            f"{factors} f, reg {reg:g}, alpha {alpha:g}",
            lambda f=factors, r=reg, a=alpha: AlternatingLeastSquares(
                factors=f, regularization=r, alpha=a, iterations=15, random_state=0
            ),
        )
        for factors, reg, alpha in itertools.product((32, 64, 128), (0.01, 0.1, 1.0), (1, 10, 40))
    ]


def _bpr_grid() -> list[tuple[str, Callable]]:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return [
        (
            f"{factors} f, lr {lr:g}, reg {reg:g}",
            lambda f=factors, rate=lr, r=reg: BayesianPersonalizedRanking(
                factors=f, learning_rate=rate, regularization=r, iterations=100, random_state=0
            ),
        )
        for factors, lr, reg in itertools.product((64, 128), (0.01, 0.05), (0.001, 0.01))
    ]


if __name__ == "__main__":
    main()
