"""Top-10 ranking on MovieLens-100k, per-user temporal split: who picks what users pick next.

    python benchmarks/ranking.py [--device cuda] [--quick]   # `pip install implicit` adds rows

Each user's latest 20% of ratings are the test part, which no pipeline sees;
relevant = test rating >= 4; candidates = items the user did not rate in the training
part. The headline row is exactly what `recsys train --objective ranking` runs:
``fit_select_refit(table, TrainConfig(objective="ranking", seed=s))`` with every other
setting at its default (the hold-out rule, the candidates of ``auto``, their grids),
on the training part; the test part then judges the refitted model once. It runs on
three seeds (the default 42, then 43 and 44): mean ± half the range. Every other row is
an ablation, labelled with what it changes from the default. Rows marked "optimistic"
chose on the test part itself (how the ``implicit`` grids are tuned): upper bounds,
not results. ``--quick`` leaves out the slow gradient-trained rows.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.sparse
import torch

from recsys import CollabData
from recsys.collab.collab_learner import CollabLearner
from recsys.collab.evaluate import RANKING_METRICS, Scorer, model_scorer, popularity_scorer
from recsys.collab.evaluate import ranking_metrics as measure
from recsys.collab.interactions import Interactions
from recsys.collab.ranking import ranking_learner
from recsys.data.ratings import RatingsTable
from recsys.data.splits import temporal_split
from recsys.db.movielens import BUNDLE
from recsys.jobs.training_job import (
    TrainConfig,
    describe_settings,
    fit_select_refit,
)

SEEDS = (42, 43, 44)  # the default seed, then the next two
HEADERS = ("precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate", "coverage")


def on_test_part(
    learn: CollabLearner, train: pd.DataFrame, test: pd.DataFrame, scorer: Scorer | None = None
) -> dict[str, float]:
    """Metrics on the test part, candidates = items the user did not rate in the whole
    training part (in ``learn``'s indices; ids it does not know are left out), ranked
    by ``scorer`` (default: the learner's model)."""

    def positions(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        users = pd.Index(learn.data.user_map.ids).get_indexer(frame["user_id"])
        items = pd.Index(learn.data.item_map.ids).get_indexer(frame["item_id"])
        known = (users >= 0) & (items >= 0)
        return users[known], items[known], frame["rating"].to_numpy(np.float32)[known]

    seen = Interactions.from_ratings(*positions(train), learn.data.n_users, learn.data.n_items)
    scorer = scorer or model_scorer(learn)
    return measure(scorer, seen, *positions(test), learn.data.n_items, k=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (implicit stays on the CPU)")
    parser.add_argument("--quick", action="store_true", help="leave out the slow models")
    args = parser.parse_args()
    device = args.device
    ratings = pd.read_parquet(BUNDLE / "ratings.parquet").rename(columns={"movie_id": "item_id"})
    split = temporal_split(ratings["user_id"].to_numpy(), ratings["timestamp"].to_numpy(), 0.2)
    train, test = ratings.iloc[split.train], ratings.iloc[split.valid]
    table = RatingsTable.from_frame(train)
    data = CollabData.from_df(train, valid_df=test)  # the popularity and optimistic rows
    x, y = (t.numpy() for t in data.dls.valid.tensors)
    valid = (x[:, 0], x[:, 1], y)
    print(
        f"{data.dls.train.n_rows:,} training ratings; {len(y):,} test ratings "
        f"({data.n_valid_dropped} more dropped: item unseen in training); device {device}"
    )
    print(
        f"{'model':<58}{'seeds':>6}{'ndcg@10':>18}"
        + "".join(f"{h:>13}" for h in HEADERS if h != "ndcg@10")
        + f"{'select+refit s':>16}  chosen (first seed)"
    )

    def report(
        name: str, runs: list[dict[str, float]], seconds: list[float], chosen: str = ""
    ) -> None:
        ndcgs = [run["ndcg"] for run in runs]
        spread = (max(ndcgs) - min(ndcgs)) / 2
        ndcg = f"{np.mean(ndcgs):.4f} ± {spread:.4f}" if len(runs) > 1 else f"{ndcgs[0]:.4f}"
        cells = "".join(
            f"{np.mean([run[n] for run in runs]):>13.4f}" for n in RANKING_METRICS if n != "ndcg"
        )
        print(
            f"{name:<58}{len(runs):>6}{ndcg:>18}{cells}{np.mean(seconds):>16.2f}  {chosen}",
            flush=True,
        )

    report("popularity", [measure(popularity_scorer(data), data.seen, *valid, data.n_items)], [0])

    default = TrainConfig(objective="ranking", device=device)  # what `recsys train` runs

    def pipeline(label: str, config: TrainConfig, seeds: tuple[int, ...] = SEEDS) -> None:
        runs, seconds, chosen = [], [], ""
        for seed in seeds:
            started = time.perf_counter()
            run = fit_select_refit(table, replace(config, seed=seed), progress=False)
            seconds.append(time.perf_counter() - started)
            runs.append(on_test_part(run.served, train, test))
            if not chosen:
                chosen = f"{run.config.model}: {describe_settings(run.settings)}"
        report(label, runs, seconds, chosen)

    pipeline("recsys train --objective ranking (the default: auto)", default)
    pipeline("ablation: EASE alone (model ease)", replace(default, model="ease"))
    pipeline("ablation: iALS alone (model ials)", replace(default, model="ials"))
    pipeline("ablation: EASE at the old fixed l2 250", replace(default, model="ease", l2=250.0))
    for rule in ("time", "temporal"):
        pipeline(
            f"ablation: the default, chosen on the {rule} hold-out", replace(default, split=rule)
        )
    pipeline("ablation: the default without the refit", replace(default, refit=False))
    if not args.quick:
        pipeline("ablation: ranking dot, sampled softmax", replace(default, model="dot"), SEEDS[:1])
        pipeline(
            "ablation: blend of EASE and ranking dot",
            replace(default, model="blend", members=("ease", "dot")),
            SEEDS[:1],
        )
        pipeline("ablation: two towers (nn)", replace(default, model="nn"), SEEDS[:1])
        rating = TrainConfig(objective="rating", device=device)
        pipeline("ablation: the rating model (recsys train's default)", rating, SEEDS[:1])

    def fit_on_test_split() -> Scorer:
        torch.manual_seed(0)
        learn = ranking_learner(data, progress=False, device=device)
        learn.fit_one_cycle()  # keeps the best-NDCG epoch on the test part itself
        return model_scorer(learn)

    if not args.quick:
        started = time.perf_counter()
        scorer = fit_on_test_split()
        results = measure(scorer, data.seen, *valid, data.n_items, k=10)
        seconds = time.perf_counter() - started
        report("ranking dot, epoch chosen on the test part (optimistic)", [results], [seconds])

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
            started = time.perf_counter()
            model = make()
            model.fit(user_items, show_progress=False)
            users, items = (
                torch.from_numpy(np.asarray(f)) for f in (model.user_factors, model.item_factors)
            )
            results = measure(
                lambda rows, u=users, i=items: u[rows] @ i.T, data.seen, *valid, data.n_items
            )
            seconds = time.perf_counter() - started
            if best is None or results["ndcg"] > best[0]["ndcg"]:
                best = (results, seconds, label)
        assert best is not None
        report(f"{name} ({best[2]}; optimistic)", [best[0]], [best[1]])


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
