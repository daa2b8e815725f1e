"""Loading versions for serving: what the models loaded together share."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from recsys.jobs.training_job import TrainConfig, train_and_register
from recsys.serving.loading import load_active
from tests.servers import ranking_version


def test_models_trained_on_the_same_ratings_share_their_id_maps(
    engine: Engine, tmp_path: Path
) -> None:
    ranking_version(engine, tmp_path / "artifacts")
    config = TrainConfig(objective="rating", epochs=1, batch_size=64, n_factors=8, device="cpu")
    train_and_register(engine, config, tmp_path / "artifacts", progress=False)

    roles = load_active(engine)
    ranking, rating = roles.recommending().recommender, roles.rating().recommender
    assert ranking is not rating
    assert ranking.user_map is rating.user_map  # one map of a million users, not two
    assert ranking.item_map is rating.item_map
    assert ranking.recommend("u0", 3).item_ids.tolist()  # and both still answer
    predicted = rating.predict(pd.DataFrame({"user_id": ["u0"], "item_id": ["i1"]}))
    assert len(predicted.ratings) == 1
