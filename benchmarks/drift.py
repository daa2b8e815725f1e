"""A synthetic ratings set with drift, for choosing how to choose settings.

    python benchmarks/drift.py            # prints its shape

MovieLens-100k is one small data set with one history; a hold-out rule that suits it
may suit nothing else. This set drifts the way a live service does, with a fixed seed:
- items are released over the three years, and each is chosen less as it ages
  (a half-life of 90 days on its appeal), so what is popular changes;
- users join at any time, stay for weeks to a year, and their tastes move while they
  stay;
- each user chooses their next item among those released and not yet rated, with
  probability ∝ exp(taste · item + appeal + freshness); the rating they give follows the
  same taste plus noise (1 to 5 stars).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY = 86_400


def drift_ratings(
    n_users: int = 1_500, n_items: int = 1_200, n_factors: int = 8, seed: int = 0
) -> pd.DataFrame:
    """About 150,000 ratings: user_id, item_id, rating, timestamp (Unix seconds)."""
    rng = np.random.default_rng(seed)
    span = 3 * 365
    released = np.sort(rng.uniform(-180, span, n_items))  # days; some exist at the start
    item_taste = rng.normal(size=(n_items, n_factors)) / np.sqrt(n_factors) * 2.0
    appeal = rng.normal(size=n_items)
    joined = rng.uniform(0, span - 7, n_users)
    stays = np.minimum(rng.exponential(120, n_users) + 7, span - joined)
    counts = np.minimum(20 + rng.geometric(1 / 80, n_users), n_items // 2)
    frames = []
    for user in range(n_users):
        days = np.sort(rng.uniform(joined[user], joined[user] + stays[user], counts[user]))
        start = rng.normal(size=n_factors) / np.sqrt(n_factors) * 2.0
        move = rng.normal(size=n_factors) / np.sqrt(n_factors) * 1.5  # per year
        taken = np.zeros(n_items, dtype=bool)
        items, ratings = [], []
        for day in days:
            taste = start + move * (day - joined[user]) / 365
            age = day - released
            affinity = item_taste @ taste
            logits = affinity + appeal - np.maximum(age, 0) / 90 * np.log(2)
            logits[(age < 0) | taken] = -np.inf
            if not np.isfinite(logits).any():
                break
            item = int(np.argmax(logits + rng.gumbel(size=n_items)))
            taken[item] = True
            items.append(item)
            ratings.append(np.clip(np.round(3 + 0.8 * affinity[item] + rng.normal(0, 0.7)), 1, 5))
        frames.append(
            pd.DataFrame(
                {
                    "user_id": user,
                    "item_id": items,
                    "rating": np.asarray(ratings, dtype=np.float32),
                    "timestamp": (1_000_000_000 + days[: len(items)] * DAY).astype(np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


if __name__ == "__main__":
    frame = drift_ratings()
    print(
        f"{len(frame):,} ratings, {frame['user_id'].nunique():,} users, "
        f"{frame['item_id'].nunique():,} items; mean rating {frame['rating'].mean():.2f}; "
        f"liked (>= 4) {np.mean(frame['rating'] >= 4):.0%}"
    )
