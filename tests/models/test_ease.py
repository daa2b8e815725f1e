"""EASE on data with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.models.ease import EASE, MAX_ITEMS, History, fit_ease
from tests.factories import two_taste_groups


def test_each_users_held_out_favourite_ranks_in_their_top_three() -> None:
    train, held_out = two_taste_groups()
    liked = train[train["rating"] >= 4]
    users = liked["user_id"].str[1:].astype(int).to_numpy()
    items = liked["item_id"].str[1:].astype(int).to_numpy()
    model = fit_ease(History.from_ratings(users, items, 40), n_items=20, l2=10.0)

    scores = model.score_all_items(torch.arange(40))
    scores[torch.tensor(users), torch.tensor(items)] = -torch.inf  # seen
    top3 = torch.topk(scores, 3, dim=1).indices.numpy()
    for row in held_out.itertuples():
        assert int(row.item_id[1:]) in top3[int(row.user_id[1:])]
    assert torch.all(model.item_weights.diagonal() == 0)


def test_pair_scores_match_the_full_score_matrix() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 300), rng.integers(0, 25, 300)
    model = fit_ease(History.from_ratings(users, items, 30), 25, l2=5.0)
    pairs = torch.tensor([[3, 7], [10, 0], [29, 24]])
    full = model.score_all_items(pairs[:, 0])
    assert torch.allclose(model(pairs), full[torch.arange(3), pairs[:, 1]], atol=1e-5)


def test_catalogs_too_big_for_a_dense_solve_are_refused() -> None:
    with pytest.raises(ValueError, match="limited to 30,000 items: use a factor model"):
        fit_ease(History.from_ratings(np.array([0]), np.array([0]), 1), MAX_ITEMS + 1)


def test_recent_ratings_weigh_more_and_disliked_ones_less() -> None:
    # Items 0-1 and 2-3 always co-occur; user 0 rated 0 long ago and 2 last.
    users = np.array([1, 1, 2, 2, 3, 3, 4, 4, 0, 0])
    items = np.array([0, 1, 0, 1, 2, 3, 2, 3, 0, 2])
    times = np.array([1, 1, 1, 1, 1, 1, 1, 1, 10, 20])
    history = History.from_ratings(users, items, 5, timestamps=times)
    model = fit_ease(history, 4, l2=1.0, half_life=1.0)
    scores = model.score_all_items(torch.tensor([0]))[0]
    assert scores[3] > scores[1]  # the neighbour of the latest rating first
    model.reweight(history, 0.0, 1.0)
    scores = model.score_all_items(torch.tensor([0]))[0]
    assert torch.isclose(scores[3], scores[1])  # without decay, alike
    disliked = History.from_ratings(users, items, 5, liked=items != 2, timestamps=times)
    model.reweight(disliked, 0.0, 0.25)
    scores = model.score_all_items(torch.tensor([0]))[0]
    assert scores[1] > scores[3]  # the liked item's neighbour first


def test_history_keeps_the_latest_rating_of_each_pair_in_csr_order() -> None:
    history = History.from_ratings(
        np.array([1, 0, 1, 1]),
        np.array([5, 3, 2, 5]),
        3,
        liked=np.array([True, True, True, False]),
        timestamps=np.array([30, 10, 20, 40]),
    )
    assert history.indptr.tolist() == [0, 1, 3, 3]
    assert history.indices.tolist() == [3, 2, 5]
    assert history.liked.tolist() == [True, True, False]  # the rating at time 40
    assert history.recency.tolist() == [0, 1, 0]


def test_an_artifact_saved_before_row_weights_scores_as_it_did() -> None:
    rng = np.random.default_rng(1)
    model = fit_ease(History.from_ratings(rng.integers(0, 9, 60), rng.integers(0, 7, 60), 9), 7)
    state = {k: v for k, v in model.state_dict().items() if k != "history_weights"}
    loaded = EASE(model.config)
    loaded.load_state_dict(state)
    users = torch.arange(9)
    assert torch.equal(loaded.score_all_items(users), model.score_all_items(users))
