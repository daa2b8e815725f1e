"""Approximate against exact search at a million items: build time, recall, latency.

    python benchmarks/ann.py [--items 1000000] [--factors 64] [--users 2000]

A ranking DotProductBias whose item vectors have the spread of trained ones
(normal factors, a popularity-like bias), 30 seen items per user; each request
is one user's top 10 through ``Recommender.recommend_many``, seen and hidden
items excluded, exactly as the service asks. Recall@10 is against the exact
answer for the same request.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from recsys.collab.ann_index import ItemIndex
from recsys.collab.interactions import Interactions
from recsys.collab.recommender import Recommender
from recsys.data.ids import IdMap
from recsys.models import DotProductBias, DotProductBiasConfig


def latencies(recommender: Recommender, users: list[str]) -> tuple[np.ndarray, list]:
    times, answers = [], []
    for user in users:
        started = time.perf_counter()
        answers.append(recommender.recommend_many([user], 10)[0])
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--users", type=int, default=2_000)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one request per worker thread, as the service runs
    torch.manual_seed(0)
    model = DotProductBias(DotProductBiasConfig(args.users, args.items, args.factors, None))
    with torch.no_grad():
        model.user_factors.normal_(std=0.3)
        model.item_factors.normal_(std=0.3)
        model.item_bias.copy_(-torch.rand(args.items, 1).log())  # a long popularity tail
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(args.users), 30)
    seen = Interactions.from_ratings(
        users, rng.integers(0, args.items, len(users)), np.full(len(users), 5.0, np.float32),
        args.users, args.items,
    )  # fmt: skip
    user_ids = np.arange(args.users).astype(str).astype(object)
    exact = Recommender(
        model, IdMap("user", user_ids),
        IdMap("item", np.arange(args.items).astype(str).astype(object)), seen,
    )  # fmt: skip
    exact.hide([str(i) for i in range(0, args.items, 10_000)])
    started = time.perf_counter()
    torch.set_num_threads(2)
    index = ItemIndex.build(model)
    build_s = time.perf_counter() - started
    torch.set_num_threads(1)
    approximate = exact.with_seen(seen)
    approximate.use_index(index)
    requests = [str(u) for u in range(args.users)]
    exact_ms, truth = latencies(exact, requests)
    ann_ms, found = latencies(approximate, requests)
    recall = np.mean(
        [len(set(a.item_ids) & set(t.item_ids)) / 10 for a, t in zip(found, truth, strict=True)]
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.items:,} items x {args.factors} factors; index built in {build_s:.1f} s; "
        f"{args.users:,} single-user requests each; peak RSS {peak:,.0f} MiB"
    )
    print(f"{'search':<12} {'p50 ms':>8} {'p99 ms':>8} {'recall@10':>10}")
    for name, ms, value in (("exact", exact_ms, 1.0), ("approximate", ann_ms, recall)):
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"{name:<12} {p50:>8.2f} {p99:>8.2f} {value:>10.4f}")


if __name__ == "__main__":
    main()
