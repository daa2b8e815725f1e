"""Collaborative learners through the public API, on data with a known answer: what is
particular to the rating learners (every model kind's recommendations, neighbours, errors
and persistence are the contract suite's, tests/collab/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sqlalchemy import Engine

from recsys import CollabData, collab_learner
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from tests.factories import taste_groups_with_unrated, two_taste_groups


def trained(use_nn: bool, train: pd.DataFrame, valid: pd.DataFrame | None = None, **kwargs: object):
    torch.manual_seed(0)
    data = CollabData.from_df(
        train, valid_df=valid if valid is not None else train.head(50), batch_size=64, seed=0
    )
    learn = collab_learner(
        data,
        n_factors=8,
        y_range=(0.5, 5.5),
        use_nn=use_nn,
        layers=[16],
        progress=False,
        device="cpu",
        **kwargs,
    )
    learn.fit_one_cycle(30, 3e-2, wd=0.01)
    return learn


def test_predictions_are_in_external_ids_and_inside_the_rating_range() -> None:
    train, held_out = two_taste_groups()
    learn = trained(False, train)
    predictions = learn.predict(held_out)
    assert predictions.shape == (len(held_out),)
    assert np.all((predictions > 0.5) & (predictions < 5.5))
    assert predictions.mean() > 4.0  # held-out items are loved ones


def test_validation_rows_with_unseen_users_or_items_are_left_out_not_crashed_on() -> None:
    train, held_out = two_taste_groups()
    stranger = pd.DataFrame(
        {
            "user_id": ["new-user", "u1"],
            "item_id": ["i1", "new-item"],
            "rating": [3.0, 4.0],
            "timestamp": [1, 1],
        }
    )
    data = CollabData.from_df(train, valid_df=pd.concat([held_out, stranger]), batch_size=64)
    assert data.n_valid_dropped == 2
    assert data.dls.valid.n_rows == len(held_out)
    assert "new-user" not in data.user_map


def test_sparse_tables_learn_the_same_thing() -> None:
    train, held_out = taste_groups_with_unrated()
    learn = trained(False, train, sparse=True)
    assert learn.model.user_factors.grad is None or learn.model.user_factors.grad.is_sparse
    for row in held_out.itertuples():
        assert learn.recommend(row.user_id, n=1)["item_id"].iloc[0] == row.item_id


def test_the_default_split_is_the_head_of_a_seeded_permutation() -> None:
    frame = pd.DataFrame(
        {
            "user_id": np.arange(100) % 10,
            "item_id": np.arange(100) // 10,
            "rating": np.arange(100) % 5 + 1.0,
        }
    )
    data = CollabData.from_df(frame, valid_pct=0.2, seed=42, batch_size=1000)
    valid_rows = np.random.default_rng(42).permutation(100)[:20]
    _x, y = next(iter(data.dls.valid))
    assert sorted(y.tolist()) == sorted(frame["rating"].to_numpy()[valid_rows].tolist())


def test_data_comes_straight_from_the_database(engine: Engine) -> None:
    train, _ = two_taste_groups()
    ingest(engine, from_frame("ratings", train, 500))
    data = CollabData.from_database(engine, valid_pct=0.2, seed=0, split="temporal", batch_size=64)
    assert data.n_users == 40
    assert data.dls.train.n_rows + data.dls.valid.n_rows + data.n_valid_dropped == len(train)
    torch.manual_seed(0)
    learn = collab_learner(data, n_factors=8, y_range=(0.5, 5.5), progress=False)
    learn.fit_one_cycle(30, 3e-2, wd=0.01)
    assert learn.recorder.rows[-1]["rmse"] < 1.0
    top = learn.recommend("u0", n=3, exclude_seen=False)["item_id"]
    assert all(int(item[1:]) < 10 for item in top)  # u0 loves the first half
