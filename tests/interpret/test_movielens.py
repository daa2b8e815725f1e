"""On the real MovieLens-100k: the model's biases and neighbours make sense to a film fan."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli import app
from recsys.collab import load_recommender
from recsys.data.catalog import read_item_catalog, read_user_ratings
from recsys.db.engine import make_engine
from recsys.interpret.embeddings import bias_ranking, item_pca, with_catalog
from recsys.jobs.model_versions import active_version

STAR_WARS, EMPIRE, JEDI = "50", "172", "181"


@pytest.mark.slow
def test_biases_and_neighbours_of_the_quickstart_model(cli_env: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["quickstart", "--no-serve"])
    assert result.exit_code == 0, result.output
    engine = make_engine(cli_env)
    # The five films printed for user 1 are films they have not rated (the model was
    # trained on 80% of their ratings; the other 20% must not come back either).
    printed = re.split(r"top 5 for user 1 \(model version \d+\):", result.output)[1]
    top = re.findall(r"^\s*[-\d.]+\s+(\d+)\s", printed, re.MULTILINE)
    assert len(top) == 5
    assert not set(top) & set(read_user_ratings(engine, "1")["item_id"])
    version = active_version(engine)
    assert version is not None
    recommender = load_recommender(version.artifact_path)
    catalog = read_item_catalog(engine)
    engine.dispose()

    lowest, highest = bias_ranking(recommender, catalog, n=10)
    assert highest["mean_rating"].mean() > 4.0
    assert lowest["mean_rating"].mean() < 2.5

    similar = recommender.similar_items(STAR_WARS, n=5, min_ratings=20).frame()
    neighbours = with_catalog(similar, catalog)
    assert {EMPIRE, JEDI} <= set(neighbours["item_id"])

    item_map = item_pca(recommender, catalog)
    assert item_map.n_fitted > 800
    assert item_map.explained_variance[0] > item_map.explained_variance[1] > 0.05
