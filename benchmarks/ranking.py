"""Top-10 ranking on MovieLens-100k, per-user temporal split: who picks what users pick next.

    python benchmarks/ranking.py

Each user's latest 20% of ratings are held out; relevant = held-out rating >= 4;
candidates = items the user did not rate in training. Popularity, the rating
model ranked by predicted rating, the same model trained with BPR on sampled
negatives (the shared Learner), and EASE (closed-form item-item) side by side.
"""

from __future__ import annotations

import time

import pandas as pd
import torch

from recsys import CollabData, collab_learner
from recsys.data.loaders import DataLoaders
from recsys.data.sampling import NegativeSampledBatches
from recsys.data.splits import temporal_split
from recsys.db.movielens import BUNDLE
from recsys.evaluate import model_scorer, popularity_scorer, ranking_metrics
from recsys.models import DotProductBias, DotProductBiasConfig
from recsys.models.ease import fit_ease
from recsys.train.learner import Learner
from recsys.train.losses import PairwiseScores, bpr_loss

NAMES = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")


def main() -> None:
    ratings = pd.read_parquet(BUNDLE / "ratings.parquet").rename(columns={"movie_id": "item_id"})
    split = temporal_split(ratings["user_id"].to_numpy(), ratings["timestamp"].to_numpy(), 0.2)
    data = CollabData.from_df(ratings.iloc[split.train], valid_df=ratings.iloc[split.valid])
    x, y = (t.numpy() for t in data.dls.valid.tensors)
    valid = (x[:, 0], x[:, 1], y)
    train_x, _ = data.dls.train.tensors
    print(
        f"{data.dls.train.n_rows:,} training ratings; {len(y):,} held out "
        f"({data.n_valid_dropped} more dropped: item unseen in training)"
    )
    header = "".join(
        f"{n + ('@10' if n in ('precision', 'recall', 'ndcg', 'map') else ''):>13}" for n in NAMES
    )
    print(f"{'model':<34}{header}{'train s':>10}")

    def report(name: str, scorer, seconds: float) -> None:
        metrics = ranking_metrics(scorer, data.seen, *valid, data.n_items, k=10)
        cells = "".join(f"{metrics[n]:>13.4f}" for n in NAMES)
        print(f"{name:<34}{cells}{seconds:>10.2f}", flush=True)

    report("popularity", popularity_scorer(data), 0.0)

    torch.manual_seed(0)
    started = time.perf_counter()
    learn = collab_learner(data, progress=False)
    learn.fit_one_cycle()
    report(
        "DotProductBias, by predicted rating", model_scorer(learn), time.perf_counter() - started
    )

    torch.manual_seed(0)
    started = time.perf_counter()
    negatives = NegativeSampledBatches(
        train_x[:, 0].numpy(), train_x[:, 1].numpy(), data.n_items, batch_size=1024, seed=0
    )
    held_out = NegativeSampledBatches(x[:, 0], x[:, 1], data.n_items, batch_size=4096, seed=1)
    bpr_model = DotProductBias(DotProductBiasConfig(data.n_users, data.n_items, 128, None))
    bpr = Learner(
        DataLoaders(negatives, held_out),
        PairwiseScores(bpr_model),
        bpr_loss,
        progress=False,
        device="cpu",
    )
    bpr.fit_one_cycle(30, 5e-3, wd=0.05)
    report(
        "DotProductBias, BPR (128 f, 30 ep)",
        bpr_model.score_all_items,
        time.perf_counter() - started,
    )

    for l2 in (100.0, 250.0, 500.0, 1000.0):
        started = time.perf_counter()
        ease = fit_ease(
            train_x[:, 0].numpy(), train_x[:, 1].numpy(), data.n_users, data.n_items, l2
        )
        report(
            f"EASE, l2={l2:g}",
            lambda users, m=ease: m.score_all_items(users),
            time.perf_counter() - started,
        )


if __name__ == "__main__":
    main()
