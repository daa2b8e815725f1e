"""The BPR objective on the shared Learner, and its negative sampler."""

from __future__ import annotations

import numpy as np
import torch

from recsys.data.loaders import DataLoaders
from recsys.data.sampling import NegativeSampledBatches
from recsys.models import DotProductBias, DotProductBiasConfig
from recsys.train.learner import Learner
from recsys.train.losses import PairwiseScores, bpr_loss
from tests.factories import two_taste_groups


def test_negatives_are_never_items_the_user_chose() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 50, 2_000), rng.integers(0, 30, 2_000)
    batches = NegativeSampledBatches(users, items, n_items=30, batch_size=256, seed=1)
    chosen = set(zip(users.tolist(), items.tolist(), strict=True))
    n_rows = 0
    for x, _ in batches:
        n_rows += len(x)
        for user, _positive, negative in x.tolist():
            assert (user, negative) not in chosen
    assert n_rows == 2_000


def test_sampling_is_deterministic_for_a_seed() -> None:
    users, items = np.arange(100) % 10, np.arange(100) % 7
    first = [x for x, _ in NegativeSampledBatches(users, items, 20, 32, seed=5)]
    second = [x for x, _ in NegativeSampledBatches(users, items, 20, 32, seed=5)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_bpr_puts_each_users_held_out_favourite_in_their_top_three() -> None:
    train, held_out = two_taste_groups()
    liked = train[train["rating"] >= 4]
    users = liked["user_id"].str[1:].astype(int).to_numpy()
    items = liked["item_id"].str[1:].astype(int).to_numpy()
    torch.manual_seed(0)
    batches = NegativeSampledBatches(users, items, n_items=20, batch_size=32, seed=0)
    model = DotProductBias(DotProductBiasConfig(40, 20, n_factors=8, y_range=None))
    learn = Learner(
        DataLoaders(batches, NegativeSampledBatches(users, items, 20, 512, seed=1)),
        PairwiseScores(model),
        bpr_loss,
        wd=0.0,
        progress=False,
        device="cpu",
    )
    learn.fit_one_cycle(20, 0.05)

    scores = model.score_all_items(torch.arange(40))
    scores[torch.tensor(users), torch.tensor(items)] = -torch.inf  # seen
    top3 = torch.topk(scores, 3, dim=1).indices.numpy()
    for row in held_out.itertuples():
        assert int(row.item_id[1:]) in top3[int(row.user_id[1:])]
    assert learn.recorder.rows[-1]["valid_loss"] < learn.recorder.rows[0]["valid_loss"]
