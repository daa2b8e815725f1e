"""Train/validation splits of a ratings table, deterministic for a given seed.

A split is two arrays of row positions. ``random_split`` is the usual rating
benchmark split; ``temporal_split`` holds out each user's latest ratings, which
is what "predict what this user does next" needs for top-N evaluation (and what
published numbers use); ``time_split`` holds out everything after one cutoff in
time, what the training job selects models and gates promotions on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Row positions of the training and validation parts."""

    train: np.ndarray
    valid: np.ndarray


def _check_fraction(valid_pct: float) -> None:
    if not 0.0 <= valid_pct < 1.0:
        raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct}")


def random_split(n_rows: int, valid_pct: float = 0.2, seed: int = 42) -> Split:
    """The first ``round(valid_pct * n)`` rows of a seeded permutation are validation."""
    _check_fraction(valid_pct)
    permutation = np.random.default_rng(seed).permutation(n_rows)
    n_valid = round(valid_pct * n_rows)
    return Split(train=np.sort(permutation[n_valid:]), valid=np.sort(permutation[:n_valid]))


def temporal_split(users: np.ndarray, timestamps: np.ndarray, valid_pct: float = 0.2) -> Split:
    """Hold out the latest ``valid_pct`` of each user's ratings (rounded half up).

    Every user keeps at least one training rating, so nobody in validation is a
    stranger to the model; ties in time keep the rows' order.
    """
    _check_fraction(valid_pct)
    users = np.asarray(users)
    n_rows = len(users)
    positions = np.arange(n_rows)
    order = np.lexsort((positions, np.asarray(timestamps), users))  # user, time, row
    sorted_users = users[order]
    starts: np.ndarray | list[int] = (
        np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]]) if n_rows else []
    )
    counts = np.diff(np.r_[starts, n_rows]) if n_rows else np.empty(0, dtype=np.int64)
    n_valid = np.minimum(np.floor(counts * valid_pct + 0.5).astype(np.int64), counts - 1)
    # Rank of each sorted row inside its user's block, and whether it is in the tail.
    rank = positions - np.repeat(starts, counts)
    is_valid_sorted = rank >= np.repeat(counts - n_valid, counts)
    is_valid = np.zeros(n_rows, dtype=bool)
    is_valid[order] = is_valid_sorted
    return Split(train=np.flatnonzero(~is_valid), valid=np.flatnonzero(is_valid))


def time_split(timestamps: np.ndarray, valid_pct: float = 0.1) -> Split:
    """Hold out the latest ``valid_pct`` of all ratings by time: one cutoff for everyone.

    Unlike :func:`temporal_split`, no held-out rating is older than any training
    rating, so nothing the model trains on comes from after what it is judged on;
    it is the split that model selection and the promotion gate use. Ties in time
    keep the rows' order.
    """
    _check_fraction(valid_pct)
    timestamps = np.asarray(timestamps)
    order = np.argsort(timestamps, kind="stable")
    n_train = len(order) - round(valid_pct * len(order))
    return Split(train=np.sort(order[:n_train]), valid=np.sort(order[n_train:]))


def cutoff_split(users: np.ndarray, timestamps: np.ndarray, valid_pct: float = 0.1) -> Split:
    """One cutoff in time for everyone, and a hold-out for every user.

    The cutoff leaves the latest ``valid_pct`` of all ratings after it. A user who rated
    on both sides of it is held out on their ratings after it (what a model trained at
    the cutoff would face next); a user who rated only before it, on their latest
    ``valid_pct`` of ratings, and so is a user who rated only after it (who keeps at
    least one training rating, as in :func:`temporal_split`). :func:`time_split` judges on
    the users who happen to be active at the end, most of them strangers to the training
    part; :func:`temporal_split` lets a user's hold-out be years older than other users'
    training ratings. This one keeps what is after the cutoff for the users who have it,
    and judges everyone.
    """
    _check_fraction(valid_pct)
    users, timestamps = np.asarray(users), np.asarray(timestamps)
    if len(users) == 0:
        return Split(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    after = np.zeros(len(users), dtype=bool)
    after[time_split(timestamps, valid_pct).valid] = True
    _, codes = np.unique(users, return_inverse=True)
    has_after = np.bincount(codes, weights=after) > 0
    has_before = np.bincount(codes, weights=~after) > 0
    straddles = (has_after & has_before)[codes]
    latest = np.zeros(len(users), dtype=bool)
    latest[temporal_split(users, timestamps, valid_pct).valid] = True
    is_valid = np.where(straddles, after, latest)
    return Split(train=np.flatnonzero(~is_valid), valid=np.flatnonzero(is_valid))
