"""The hybrid recommender on MovieLens-100k: the random split, and a cold-start split.

    python benchmarks/hybrid.py                 # both tables
    python benchmarks/hybrid.py --device cuda

Random split: CollabData.from_df(valid_pct=0.2, seed=42), the split of
benchmarks/collab.py; validation RMSE of the last epoch.

Cold-start split: 10% of users (numpy default_rng(42)) are held out entirely;
models train on the other users' ratings (10% of those at random watch the
training) and predict every rating of the held-out users. The hybrid scores them
with its learned "unknown user" vector plus their age, gender and occupation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from recsys import CollabData, collab_learner
from recsys.collab.hybrid import HYBRID_DEFAULTS, hybrid_learner
from recsys.db.movielens import BUNDLE, items_frame
from recsys.train.learner import Learner


def load() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ratings = pd.read_parquet(BUNDLE / "ratings.parquet").rename(columns={"movie_id": "item_id"})
    users = pd.read_parquet(BUNDLE / "users.parquet")
    return ratings, users, items_frame()


def timed(
    learn: Learner, epochs: int | None = None, lr: float | None = None, wd: float | None = None
) -> float:
    started = time.perf_counter()
    learn.fit_one_cycle(epochs, lr, wd)
    if learn.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def random_split_table(frames: tuple, device: str) -> None:
    ratings, users, items = frames
    print("random 80/20 split (seed 42): validation RMSE", flush=True)
    for name, build in (
        ("DotProductBias (collab defaults)", lambda d, **kw: collab_learner(d, **kw)),
        ("EmbeddingNN (collab defaults)", lambda d, **kw: collab_learner(d, use_nn=True, **kw)),
        ("HybridNN (hybrid defaults)", lambda d, **kw: hybrid_learner(d, users, items, **kw)),
        (
            "HybridNN + dot part (50 factors)",
            lambda d, **kw: hybrid_learner(d, users, items, n_factors=50, **kw),
        ),
    ):
        torch.manual_seed(0)
        learn = build(CollabData.from_df(ratings), device=device, progress=False)
        seconds = timed(learn)
        print(f"  {name:<40} RMSE {learn.recorder.rows[-1]['rmse']:.4f}  {seconds:6.1f} s")


def cold_start_table(frames: tuple, device: str) -> None:
    ratings, users, items = frames
    user_ids = ratings["user_id"].unique()
    rng = np.random.default_rng(42)
    held_out = set(rng.choice(user_ids, size=round(0.1 * len(user_ids)), replace=False).tolist())
    test = ratings[ratings["user_id"].isin(held_out)]
    train = ratings[~ratings["user_id"].isin(held_out)]
    actual = test["rating"].to_numpy(float)
    print(
        f"cold start: {len(held_out)} users held out ({len(test):,} ratings), "
        f"{len(train):,} training ratings",
        flush=True,
    )
    mean = train["rating"].mean()
    print(f"  {'global mean':<40} RMSE {rmse(np.full(len(test), mean), actual):.4f}")
    for damping in (5, 25):
        item_sum = (train["rating"] - mean).groupby(train["item_id"]).sum()
        bias = item_sum / (train.groupby("item_id").size() + damping)
        predicted = mean + test["item_id"].map(bias).fillna(0.0).to_numpy()
        name = f"global mean + item bias (damping {damping})"
        print(f"  {name:<40} RMSE {rmse(predicted, actual):.4f}")
    for n_factors in (0, 50):
        torch.manual_seed(0)
        data = CollabData.from_df(train, valid_pct=0.1, seed=42)
        learn = hybrid_learner(
            data, users, items, n_factors=n_factors, device=device, progress=False
        )
        seconds = timed(learn)
        recommender = learn.recommender()
        name = "HybridNN" if n_factors == 0 else "HybridNN + dot part"
        predicted = recommender.predict(test, users=users, items=items).ratings
        label = f"{name}, their metadata"
        print(f"  {label:<40} RMSE {rmse(predicted, actual):.4f}  {seconds:6.1f} s")
        blank = users[["user_id"]]  # the same users, no metadata: the unknown vector alone
        predicted = recommender.predict(test, users=blank, items=items).ratings
        label = f"{name}, no metadata"
        print(f"  {label:<40} RMSE {rmse(predicted, actual):.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    frames = load()
    print(f"hybrid defaults: {HYBRID_DEFAULTS}")
    random_split_table(frames, args.device)
    cold_start_table(frames, args.device)


if __name__ == "__main__":
    main()
