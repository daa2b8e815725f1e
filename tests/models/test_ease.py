"""EASE on data with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.models.ease import MAX_ITEMS, fit_ease
from tests.factories import two_taste_groups


def test_each_users_held_out_favourite_ranks_in_their_top_three() -> None:
    train, held_out = two_taste_groups()
    liked = train[train["rating"] >= 4]
    users = liked["user_id"].str[1:].astype(int).to_numpy()
    items = liked["item_id"].str[1:].astype(int).to_numpy()
    model = fit_ease(users, items, n_users=40, n_items=20, l2=10.0)

    scores = model.score_all_items(torch.arange(40))
    scores[torch.tensor(users), torch.tensor(items)] = -torch.inf  # seen
    top3 = torch.topk(scores, 3, dim=1).indices.numpy()
    for row in held_out.itertuples():
        assert int(row.item_id[1:]) in top3[int(row.user_id[1:])]
    assert torch.all(model.item_weights.diagonal() == 0)


def test_pair_scores_match_the_full_score_matrix() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 300), rng.integers(0, 25, 300)
    model = fit_ease(users, items, 30, 25, l2=5.0)
    pairs = torch.tensor([[3, 7], [10, 0], [29, 24]])
    full = model.score_all_items(pairs[:, 0])
    assert torch.allclose(model(pairs), full[torch.arange(3), pairs[:, 1]], atol=1e-5)


def test_catalogs_too_big_for_a_dense_solve_are_refused() -> None:
    with pytest.raises(ValueError, match="limited to 30,000 items: use a factor model"):
        fit_ease(np.array([0]), np.array([0]), 1, MAX_ITEMS + 1)
