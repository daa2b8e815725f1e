"""Top-10 ranking on MovieLens-100k, per-user temporal split: who picks what users pick next.

    python benchmarks/ranking.py [--device cuda]   # `pip install implicit` adds its rows

Each user's latest 20% of ratings are the test part; relevant = test rating >= 4;
candidates = items the user did not rate in the training part. Every recsys row
runs the pipeline `recsys train` runs (``fit_select_refit``): choose the epochs
on a hold-out carved from the training part (each user's latest 10% of it), then
refit on the whole training part, and evaluate once on the test part; the row
"as selected" is the stage-one model served without the refit (`--no-refit`).
Rows marked "optimistic" chose on the test part itself (the old protocol here,
and how the `implicit` grids are tuned): they are upper bounds, not results.
The blend row standardises each model's scores per user and weights them with
the weight that scored best on the carved hold-out (stage-one models), then
applies it to the refitted ones.
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
from recsys.jobs.training_job import FittedModel, TrainConfig, fit_select_refit

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


def on_hold_out(learn: CollabLearner, scorer: Scorer) -> dict[str, float]:
    """Metrics on the learner's own hold-out (the part carved from the training part)."""
    x, y = (t.cpu().numpy() for t in learn.data.dls.valid.tensors)
    return measure(scorer, learn.data.seen, x[:, 0], x[:, 1], y, learn.data.n_items, k=10)


def blend(first: CollabLearner, second: CollabLearner, weight: float) -> Scorer:
    """weight x first + (1 - weight) x second, each standardised per user over the items.
    The two learners must share their id maps (fitted on the same ratings)."""
    assert np.array_equal(first.data.item_map.ids, second.data.item_map.ids)
    scorers = (model_scorer(first), model_scorer(second))

    def standardised(scores: torch.Tensor) -> torch.Tensor:
        mean, std = scores.mean(1, keepdim=True), scores.std(1, keepdim=True)
        return (scores - mean) / std.clamp_min(1e-6)

    return lambda users: (
        weight * standardised(scorers[0](users)) + (1 - weight) * standardised(scorers[1](users))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (implicit stays on the CPU)")
    device = parser.parse_args().device
    ratings = pd.read_parquet(BUNDLE / "ratings.parquet").rename(columns={"movie_id": "item_id"})
    split = temporal_split(ratings["user_id"].to_numpy(), ratings["timestamp"].to_numpy(), 0.2)
    train, test = ratings.iloc[split.train], ratings.iloc[split.valid]
    table = RatingsTable.from_frame(train)
    data = CollabData.from_df(train, valid_df=test)  # the popularity and optimistic rows
    x, y = (t.numpy() for t in data.dls.valid.tensors)
    valid = (x[:, 0], x[:, 1], y)
    print(
        f"{data.dls.train.n_rows:,} training ratings; {len(y):,} test ratings "
        f"({data.n_valid_dropped} more dropped: item unseen in training)"
    )
    print(f"{'model':<64}" + "".join(f"{h:>13}" for h in HEADERS) + f"{'train s':>10}")

    def report(name: str, results: dict[str, float], seconds: float) -> None:
        cells = "".join(f"{results[n]:>13.4f}" for n in RANKING_METRICS)
        print(f"{name:<64}{cells}{seconds:>10.2f}", flush=True)

    def optimistic(fit: Callable[[], Scorer]) -> tuple[dict[str, float], float]:
        started = time.perf_counter()
        scorer = fit()
        seconds = time.perf_counter() - started
        return measure(scorer, data.seen, *valid, data.n_items, k=10), seconds

    report("popularity", measure(popularity_scorer(data), data.seen, *valid, data.n_items), 0.0)

    # What `recsys train` runs, on the training part: choose on each user's latest 10%.
    pipeline = TrainConfig(split="temporal", valid_pct=0.1, device=device)
    ranks = replace(pipeline, objective="ranking")  # model "auto"
    ease = replace(ranks, model="ease")
    ndcgs: dict[str, list[float]] = {"as selected": [], "refit": []}
    kept: dict[str, FittedModel] = {}
    for label, config, seeds in (
        ("DotProductBias, rating objective", replace(pipeline, model="dot"), (0,)),
        ("EmbeddingNN, rating objective", replace(pipeline, model="nn"), (0,)),
        ("ranking dot, sampled softmax", replace(ranks, model="dot"), (0, 1, 2)),
        ("ranking two towers (nn), sampled softmax", replace(ranks, model="nn"), (0,)),
        ("ranking EASE, no recency (half-life 0)", replace(ease, half_life=0.0), (0,)),
        ("ranking EASE, l2=100", replace(ease, l2=100.0), (0,)),
        ("ranking EASE, l2=500", replace(ease, l2=500.0), (0,)),
        ("ranking auto = EASE l2=250 (default)", ranks, (0,)),
    ):  # fmt: skip
        for seed in seeds:
            started = time.perf_counter()
            fitted = fit_select_refit(table, replace(config, seed=seed), progress=False)
            seconds = time.perf_counter() - started
            kept.setdefault(label, fitted)
            suffix = f", seed {seed}" if len(seeds) > 1 else ""
            chosen = ", ".join(f"{name} {value:g}" for name, value in fitted.settings.items())
            served = on_test_part(fitted.served, train, test)
            selected = on_test_part(fitted.selected, train, test)
            report(f"{label}{suffix}, as selected", selected, seconds)
            report(f"{label}{suffix}, refit ({chosen})", served, seconds)
            if label.startswith("ranking dot"):
                ndcgs["as selected"].append(selected["ndcg"])
                ndcgs["refit"].append(served["ndcg"])
    print(
        "ranking dot, sampled softmax: mean NDCG@10 over seeds "
        + ", ".join(f"{name} {np.mean(values):.4f}" for name, values in ndcgs.items())
    )
    default, dot = (
        kept["ranking auto = EASE l2=250 (default)"],
        kept["ranking dot, sampled softmax"],
    )
    weights = (0.2, 0.35, 0.5, 0.65, 0.8)
    chosen = max(
        weights,
        key=lambda w: on_hold_out(dot.selected, blend(default.selected, dot.selected, w))["ndcg"],
    )
    report(
        f"blend EASE x {chosen:g} + dot x {1 - chosen:g} (weight chosen on hold-out), refit",
        on_test_part(default.served, train, test, blend(default.served, dot.served, chosen)),
        0.0,
    )

    def fit_on_test_split() -> Scorer:
        torch.manual_seed(0)
        learn = ranking_learner(data, progress=False, device=device)
        learn.fit_one_cycle()  # keeps the best-NDCG epoch on the test part itself
        return model_scorer(learn)

    label = "ranking dot, epoch chosen on the test part (optimistic)"
    report(label, *optimistic(fit_on_test_split))

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

            results, seconds = optimistic(fit_implicit)
            if best is None or results["ndcg"] > best[0]["ndcg"]:
                best = (results, seconds, label)
        assert best is not None
        report(f"{name} ({best[2]}; optimistic)", best[0], best[1])


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
