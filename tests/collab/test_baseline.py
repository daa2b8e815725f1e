"""Baselines for ids a rating model never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import CollabData
from recsys.collab import load_recommender
from recsys.collab.baseline import DAMPING, RatingBaseline
from recsys.collab.collab_learner import collab_learner
from recsys.data.ids import UnknownIdError
from tests.factories import two_taste_groups


def test_offsets_are_damped_mean_deviations_and_unknown_sides_add_nothing() -> None:
    users, items = np.array([0, 0, 1]), np.array([0, 1, 0])
    baseline = RatingBaseline.from_ratings(users, items, np.array([5.0, 3.0, 1.0]), 2, 3)
    assert baseline.mean == pytest.approx(3.0)
    assert baseline.user_offsets.tolist() == pytest.approx([2 / (2 + DAMPING), -2 / (1 + DAMPING)])
    assert baseline.item_offsets.tolist() == pytest.approx([0.0, 0.0, 0.0])
    predicted = baseline.predict(np.array([0, -1, -1]), np.array([-1, 2, -1]))
    assert predicted.tolist() == pytest.approx([3 + 2 / (2 + DAMPING), 3.0, 3.0])


def test_the_baseline_answers_unseen_pairs_and_leaves_the_rest_to_the_model(tmp_path: Path) -> None:
    train, _ = two_taste_groups()
    train.loc[train["item_id"] == "i3", "rating"] = 5.0  # one item everyone loves
    learn = collab_learner(CollabData.from_df(train, valid_pct=0.1), n_factors=4, progress=False)
    learn.fit_one_cycle(2)
    pairs = pd.DataFrame(
        {"user_id": ["u0", "new", "u1", "new"], "item_id": ["i1", "i3", "nothing", "nothing"]}
    )
    with pytest.raises(UnknownIdError, match="unknown user id 'new'"):
        learn.predict(pairs)
    predicted = learn.recommender().predict(pairs, unknown="baseline")
    assert predicted.baseline.tolist() == [False, True, True, True]
    assert predicted.ratings[0] == pytest.approx(learn.predict(pairs.iloc[[0]])[0], abs=1e-6)
    mean = learn.data.rating_baseline.mean
    assert predicted.ratings[3] == pytest.approx(mean)
    assert predicted.ratings[1] > mean + 0.5  # the loved item's offset
    loaded = load_recommender(learn.save(tmp_path / "model.pt"))
    assert np.array_equal(loaded.predict(pairs, unknown="baseline").ratings, predicted.ratings)
