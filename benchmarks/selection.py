"""Which hold-out should `recsys train` choose its settings on? Each rule, judged by the test.

    python benchmarks/selection.py [--models auto,ease,ials,rating-dot] [--seeds 42,43,44]

For each data set (MovieLens-100k; the drifting synthetic set of benchmarks/drift.py)
and each test part the pipeline never sees:
- "users' latest": each user's latest 20% (the ranking benchmark's test part);
- "after a cutoff": every rating after the time that leaves 20% of them after it
  (what a model trained at that time faces next; its strangers cannot be scored);
each hold-out rule (``TrainConfig.split``: time, temporal, cutoff, and random for the
rating model) runs the training job's code, ``fit_select_refit``, on the rest: it
chooses the settings (EASE's ridge and half-life, iALS's, the epochs) on its
hold-out carved from the training part, refits on all of it, and the test part judges
the refit model: NDCG@10 (relevant = rating >= 4) for ranking, RMSE for ratings. The
rule whose choices score best on every test part is the default.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from drift import drift_ratings
from ranking import on_test_part

from recsys.collab.collab_learner import CollabLearner
from recsys.data.ratings import RatingsTable
from recsys.data.splits import temporal_split, time_split
from recsys.db.movielens import BUNDLE
from recsys.jobs.training_job import TrainConfig, describe_settings, fit_select_refit

RANKING_SPLITS = ("time", "temporal", "cutoff")
MODELS = {
    "auto": TrainConfig(objective="ranking"),
    "ease": TrainConfig(objective="ranking", model="ease"),
    "ials": TrainConfig(objective="ranking", model="ials"),
    "ranking-dot": TrainConfig(objective="ranking", model="dot"),
    "rating-dot": TrainConfig(objective="rating", model="dot"),
}


def data_sets() -> dict[str, pd.DataFrame]:
    movielens = pd.read_parquet(BUNDLE / "ratings.parquet").rename(columns={"movie_id": "item_id"})
    return {"MovieLens-100k": movielens, "drift": drift_ratings()}


def test_parts(ratings: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    users, times = ratings["user_id"].to_numpy(), ratings["timestamp"].to_numpy()
    latest = temporal_split(users, times, 0.2)
    after = time_split(times, 0.2)
    return {
        "users' latest": (ratings.iloc[latest.train], ratings.iloc[latest.valid]),
        "after a cutoff": (ratings.iloc[after.train], ratings.iloc[after.valid]),
    }


def test_rmse(fitted_learner: CollabLearner, test: pd.DataFrame) -> float:
    """RMSE on the whole test part (its strangers get the baseline's predictions)."""
    predicted = fitted_learner.recommender().predict(test, unknown="baseline")
    errors = predicted.ratings - test["rating"].to_numpy(np.float32)
    return float(np.sqrt(np.mean(errors**2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="auto,ease,ials,rating-dot")
    parser.add_argument("--seeds", default="42")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    print(
        f"{'data set':<16}{'test part':<16}{'model':<13}{'hold-out':<10}"
        f"{'test metric (mean ± spread over seeds)':<42}{'chosen (seed ' + str(seeds[0]) + ')':<40}"
        f"{'s':>6}"
    )
    for data_name, ratings in data_sets().items():
        for test_name, (train, test) in test_parts(ratings).items():
            table = RatingsTable.from_frame(train)
            for model in args.models.split(","):
                config = MODELS[model]
                splits = RANKING_SPLITS
                if config.objective == "rating":
                    splits = ("random", *RANKING_SPLITS)
                for split in splits:
                    values, chosen, seconds = [], "", 0.0
                    for seed in seeds:
                        started = time.perf_counter()
                        fitted = fit_select_refit(
                            table, replace(config, split=split, seed=seed), progress=False
                        )
                        seconds += time.perf_counter() - started
                        if config.objective == "ranking":
                            values.append(on_test_part(fitted.served, train, test)["ndcg"])
                        else:
                            values.append(test_rmse(fitted.served, test))
                        if not chosen:
                            chosen = describe_settings(fitted.settings)
                    metric = "NDCG@10" if config.objective == "ranking" else "RMSE"
                    spread = (max(values) - min(values)) / 2
                    print(
                        f"{data_name:<16}{test_name:<16}{model:<13}{split:<10}"
                        f"{metric + f' {np.mean(values):.4f} ± {spread:.4f}':<42}{chosen:<40}"
                        f"{seconds / len(seeds):>6.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
