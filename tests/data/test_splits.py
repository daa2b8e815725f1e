"""Random, per-user temporal, global time and per-user cutoff splits."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.splits import cutoff_split, random_split, temporal_split, time_split


def test_random_split_takes_the_head_of_a_seeded_permutation() -> None:
    split = random_split(1000, valid_pct=0.2, seed=42)
    expected_valid = np.random.default_rng(42).permutation(1000)[:200]
    assert set(split.valid) == set(expected_valid)
    assert len(split.train) == 800
    assert not set(split.train) & set(split.valid)
    assert np.array_equal(random_split(1000, 0.2, 42).valid, split.valid)
    assert not np.array_equal(random_split(1000, 0.2, 43).valid, split.valid)


def test_temporal_split_holds_out_each_users_latest_ratings() -> None:
    rng = np.random.default_rng(1)
    users = rng.integers(0, 20, 500)
    timestamps = rng.integers(0, 10_000, 500)

    split = temporal_split(users, timestamps, valid_pct=0.25)

    assert len(split.train) + len(split.valid) == 500
    for user in np.unique(users):
        train_times = timestamps[split.train][users[split.train] == user]
        valid_times = timestamps[split.valid][users[split.valid] == user]
        n = int((users == user).sum())
        assert len(train_times) >= 1
        assert len(valid_times) == min(int(np.floor(n * 0.25 + 0.5)), n - 1)
        if len(valid_times):
            assert train_times.max() <= valid_times.min()


def test_temporal_split_keeps_single_rating_users_in_training_and_breaks_ties_by_row() -> None:
    split = temporal_split(np.array([0, 1, 1]), np.array([5, 7, 7]), valid_pct=0.5)
    assert list(split.train) == [0, 1]
    assert list(split.valid) == [2]


@pytest.mark.parametrize("valid_pct", [-0.1, 1.0])
def test_fractions_outside_zero_to_one_are_refused(valid_pct: float) -> None:
    with pytest.raises(ValueError, match="valid_pct"):
        random_split(10, valid_pct)
    with pytest.raises(ValueError, match="valid_pct"):
        temporal_split(np.zeros(3), np.zeros(3), valid_pct)


def test_time_split_holds_out_everything_after_one_cutoff() -> None:
    timestamps = np.random.default_rng(2).integers(0, 10_000, 500)
    split = time_split(timestamps, valid_pct=0.1)
    assert len(split.valid) == 50
    assert len(split.train) + len(split.valid) == 500
    # No held-out rating is older than any training rating.
    assert timestamps[split.valid].min() >= timestamps[split.train].max()
    ties = np.array([5, 5, 5, 5])  # ties keep the rows' order: the last rows are held out
    assert time_split(ties, 0.5).valid.tolist() == [2, 3]
    with pytest.raises(ValueError, match="valid_pct"):
        time_split(timestamps, 1.0)


def test_cutoff_split_judges_every_user_after_the_cutoff_or_on_their_latest() -> None:
    # 10 of the 40 ratings are after the cutoff (time 100 on): user 0 rated on both
    # sides of it, user 1 only before it, user 2 only after it.
    users = np.array([0] * 10 + [1] * 25 + [2] * 5)
    times = np.concatenate([np.arange(0, 5), np.arange(100, 105), np.arange(10, 35), [105] * 5])
    split = cutoff_split(users, times, valid_pct=0.25)

    valid = set(split.valid.tolist())
    assert valid & set(range(10)) == set(range(5, 10))  # user 0: everything after it
    assert valid & set(range(10, 35)) == set(range(29, 35))  # user 1: latest 6 of 25
    assert valid & set(range(35, 40)) == {39}  # user 2: latest 1 of 5 (ties: row order)
    assert sorted(valid | set(split.train.tolist())) == list(range(40))
    assert not valid & set(split.train.tolist())


def test_cutoff_split_of_nothing_is_empty() -> None:
    split = cutoff_split(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 0.1)
    assert len(split.train) == len(split.valid) == 0
