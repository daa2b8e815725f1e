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


def taste_groups_with_unrated(
    n_users: int = 40, n_items: int = 20, n_other_rated: int = 3, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Like :func:`two_taste_groups`, but each user rated only ``n_other_rated`` items of
    the other group (1 star) besides all but one of their own group's (5 stars).

    The held-out loved item is then the one unseen item of their taste among several
    unseen items of the other taste: a model must rank it above those (and above the
    loved items it must leave out as seen), so the known answer is not a given.
    """
    rng = np.random.default_rng(seed)
    rows, held_out = [], []
    half = n_items // 2
    for user in range(n_users):
        loved = list(range(half)) if user % 2 == 0 else list(range(half, n_items))
        other = [i for i in range(n_items) if i not in loved]
        hidden = int(rng.choice(loved))
        rated_other = set(rng.choice(other, n_other_rated, replace=False).tolist())
        for item in range(n_items):
            if item == hidden:
                target, rating = held_out, 5.0
            elif item in loved:
                target, rating = rows, 5.0
            elif item in rated_other:
                target, rating = rows, 1.0
            else:
                continue
            target.append(
                {
                    "user_id": f"u{user}",
                    "item_id": f"i{item}",
                    "rating": rating,
                    "timestamp": 0,
                }
            )
    # Ratings arrive interleaved in time, as they do: a time cutoff then holds out some
    # of everyone's, not whole items nobody rated before it.
    rows_frame = pd.DataFrame(rows)
    rows_frame["timestamp"] = 1_000 + rng.permutation(len(rows_frame))
    held_out_frame = pd.DataFrame(held_out).assign(timestamp=1_000 + len(rows_frame))
    return rows_frame, held_out_frame


def taste_metadata(n_users: int = 60, n_items: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metadata that matches the taste groups: even users (who love the first half of the
    items) are women in their twenties, odd users men over 50; the first half of the
    items are comedies from the 1990s, the second half horror films from the 1980s."""
    users = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(n_users)],
            "age": [24 if u % 2 == 0 else 61 for u in range(n_users)],
            "gender": ["F" if u % 2 == 0 else "M" for u in range(n_users)],
            "occupation": ["student" if u % 2 == 0 else "retired" for u in range(n_users)],
        }
    )
    half = n_items // 2
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "genres": [["Comedy"] if i < half else ["Horror"] for i in range(n_items)],
            "release_date": ["1995-06-01" if i < half else "1984-10-01" for i in range(n_items)],
        }
    )
    return users, items
