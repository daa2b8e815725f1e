"""Collaborative learners through the public API, on data with a known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sqlalchemy import Engine

from recsys import CollabData, DotProductBias, EmbeddingNN, collab_learner, load_recommender
from recsys.data.ratings import UnknownIdError
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from tests.factories import taste_groups_with_unrated, two_taste_groups

MODELS = [pytest.param(False, id="dot"), pytest.param(True, id="nn")]


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


@pytest.mark.parametrize("use_nn", MODELS)
def test_each_users_held_out_favourite_is_recommended_first(use_nn: bool) -> None:
    """Among several unseen items (the favourite and others of the other taste, which
    the other group loves): the model must rank by taste, not by what is left."""
    train, held_out = taste_groups_with_unrated()
    learn = trained(use_nn, train)

    for row in held_out.itertuples():
        top = learn.recommend(row.user_id, n=3)
        assert top["item_id"].iloc[0] == row.item_id


@pytest.mark.parametrize("use_nn", MODELS)
def test_recommendations_never_include_rated_items_and_scores_are_sorted(use_nn: bool) -> None:
    train, _ = two_taste_groups()
    learn = trained(use_nn, train)
    rated = set(train.loc[train["user_id"] == "u3", "item_id"])

    top = learn.recommend("u3", n=50)

    assert not rated & set(top["item_id"])
    assert len(top) == 20 - len(rated)  # fewer unseen items than n: all of them
    assert list(top["score"]) == sorted(top["score"], reverse=True)
    with_seen = learn.recommend("u3", n=50, exclude_seen=False)
    assert len(with_seen) == 20


def test_predictions_are_in_external_ids_and_inside_the_rating_range() -> None:
    train, held_out = two_taste_groups()
    learn = trained(False, train)
    predictions = learn.predict(held_out)
    assert predictions.shape == (len(held_out),)
    assert np.all((predictions > 0.5) & (predictions < 5.5))
    assert predictions.mean() > 4.0  # held-out items are loved ones


def test_unknown_ids_give_a_clear_error() -> None:
    train, _ = two_taste_groups()
    learn = trained(False, train)
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        learn.recommend("nobody")
    with pytest.raises(UnknownIdError, match="unknown item id 'i999'"):
        learn.predict(pd.DataFrame({"user_id": ["u1"], "item_id": ["i999"]}))
    with pytest.raises(UnknownIdError, match="unknown item id 'i999'"):
        learn.similar_items("i999")


def test_similar_items_share_the_taste_group_and_exclude_the_item_itself() -> None:
    train, _ = two_taste_groups()
    learn = trained(False, train)
    similar = learn.similar_items("i0", n=5)
    assert "i0" not in set(similar["item_id"])
    assert {int(i[1:]) for i in similar["item_id"]} <= set(range(10))
    assert len(learn.similar_items("i0", n=500)) == 19  # catalog smaller than n


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


@pytest.mark.parametrize("use_nn", MODELS)
def test_save_and_load_round_trip_predictions_exactly(use_nn: bool, tmp_path: Path) -> None:
    train, held_out = two_taste_groups()
    learn = trained(use_nn, train)
    path = learn.save(tmp_path / "model.pt")

    recommender = load_recommender(path)

    assert np.array_equal(recommender.predict(held_out).ratings, learn.predict(held_out))
    pd.testing.assert_frame_equal(recommender.recommend("u5", 5).frame(), learn.recommend("u5", 5))
    assert isinstance(recommender.model, EmbeddingNN if use_nn else DotProductBias)


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
