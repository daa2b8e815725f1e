"""The hybrid recommender: metadata in, sensible answers for users and items it never saw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys import CollabData
from recsys.collab import Recommender, load_recommender
from recsys.collab.hybrid import HybridLearner, hybrid_learner
from recsys.data.ids import UnknownIdError
from recsys.data.metadata import MetadataEncoder
from tests.factories import taste_metadata, two_taste_groups


@pytest.fixture(scope="module", params=[0, 8], ids=["deep", "deep+dot"])
def learner(request: pytest.FixtureRequest) -> HybridLearner:
    ratings, _ = two_taste_groups(n_users=40)
    torch.manual_seed(0)
    data = CollabData.from_df(ratings, valid_pct=0.1, seed=0, batch_size=64)
    users, items = taste_metadata()
    learn = hybrid_learner(
        data, users, items, id_dropout=0.3, n_factors=request.param, progress=False, device="cpu"
    )
    learn.fit_one_cycle(20, 1e-2, 0.01)
    assert learn.recorder.rows[-1]["rmse"] < 0.5
    return learn


@pytest.fixture(scope="module")
def trained(learner: HybridLearner) -> Recommender:
    return learner.recommender()


def test_the_encoder_maps_unseen_and_missing_values_to_unknown() -> None:
    users, items = taste_metadata()
    encoder = MetadataEncoder.fit(users, items)
    again = MetadataEncoder.from_state(encoder.state())
    new = pd.DataFrame({"age": [30, None], "gender": ["F", "nonbinary"], "occupation": [None, ""]})
    codes = again.encode_users(new)
    assert codes[0].tolist() == [3, 1, 0]  # 25-34 is the third age group; F; unknown
    assert codes[1].tolist() == [0, 0, 0]
    genres, decades = again.encode_items(
        pd.DataFrame({"genres": [["Comedy", "Western"], None], "release_date": ["1996-01-01", "x"]})
    )
    # Columns: no known genre, Comedy, Horror; Western was never seen in training.
    assert genres.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    assert decades.tolist() == [2, 0]  # 1980s -> 1, 1990s -> 2


def test_a_new_user_is_recommended_by_their_metadata(trained: Recommender) -> None:
    assert "u100" not in trained.user_map
    profile = {"age": 22, "gender": "F", "occupation": "student"}
    like_even = trained.recommend_for_profile(profile, 10)
    like_odd = trained.recommend_for_profile({"age": 70, "gender": "M", "occupation": "retired"})
    comedies = {f"i{i}" for i in range(10)}
    assert set(like_even.item_ids) == comedies
    assert not set(like_odd.item_ids) & comedies
    excluded = trained.recommend_for_profile({"gender": "F"}, 3, exclude=["i0", "i1"])
    assert len(excluded.item_ids) == 3
    assert not {"i0", "i1"} & set(excluded.item_ids)


def test_unseen_users_and_items_are_predicted_from_metadata(trained: Recommender) -> None:
    pairs = pd.DataFrame(
        {"user_id": ["new-f", "new-m", "new-f", "u0"], "item_id": ["i3", "i3", "new-horror", "i3"]}
    )
    users = pd.DataFrame(
        {
            "user_id": ["new-f", "new-m"],
            "age": [23, 58],
            "gender": ["F", "M"],
            "occupation": ["student", "retired"],
        }
    )
    items = pd.DataFrame(
        {"item_id": ["new-horror"], "genres": [["Horror"]], "release_date": ["1986-01-01"]}
    )
    predicted = trained.predict(pairs, users=users, items=items).ratings
    assert predicted[0] > 4.0  # a young woman and a comedy
    assert predicted[1] < 2.0  # an older man and a comedy
    assert predicted[2] < 2.5  # a young woman and a new horror film
    # A known pair is scored exactly as the id-based predict does.
    assert predicted[3] == pytest.approx(trained.predict(pairs.iloc[[3]]).ratings[0], abs=1e-5)
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        trained.predict(pd.DataFrame({"user_id": ["nobody"], "item_id": ["i1"]}))


def test_save_and_load_keep_the_metadata(learner: HybridLearner, tmp_path) -> None:
    path = learner.save(tmp_path / "hybrid.pt")
    loaded = load_recommender(path)
    assert loaded.reads_metadata
    profile = {"age": 22, "gender": "F", "occupation": "student"}
    ours, theirs = (
        loaded.recommend_for_profile(profile),
        learner.recommender().recommend_for_profile(profile),
    )
    assert list(ours.item_ids) == list(theirs.item_ids)
    assert np.allclose(ours.scores, theirs.scores, atol=1e-6)
    pairs = pd.DataFrame({"user_id": ["u0", "u1"], "item_id": ["i1", "i19"]})
    assert np.allclose(
        loaded.predict(pairs).ratings, learner.recommender().predict(pairs).ratings, atol=1e-6
    )


def test_hybrid_is_a_rating_model_only() -> None:
    from recsys.jobs.training_job import TrainConfig

    with pytest.raises(ValueError, match="hybrid is a rating model"):
        TrainConfig(objective="ranking", model="hybrid")
