"""Small synthetic data sets with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd


def two_taste_groups(
    n_users: int = 40, n_items: int = 20, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two user groups with opposite tastes: even users love the first half of the items
    and dislike the second half, odd users the other way round.

    Every user rated every item except one loved item, which is returned as the
    held-out frame: it is the one item each user should be recommended first.
    """
    rng = np.random.default_rng(seed)
    rows, held_out = [], []
    half = n_items // 2
    for user in range(n_users):
        loved = range(half) if user % 2 == 0 else range(half, n_items)
        hidden = int(rng.choice(list(loved)))
        for item in range(n_items):
            rating = 5.0 if item in loved else 1.0
            target = held_out if item == hidden else rows
            target.append(
                {
                    "user_id": f"u{user}",
                    "item_id": f"i{item}",
                    "rating": rating,
                    "timestamp": 1_000 + item,
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(held_out)


def easy_rule_rows(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """Rows whose label ``y`` is "hi" when ``group`` is "a" or ``x`` > 1, else "lo"."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"group": rng.choice(["a", "b", "c"], n), "x": rng.normal(size=n)})
    frame["y"] = np.where((frame["group"] == "a") | (frame["x"] > 1), "hi", "lo")
    return frame
