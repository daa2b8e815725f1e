"""Training runs become model versions; a failed run leaves the active one in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from recsys.collab import load_recommender
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.registry import active_version, list_versions
from recsys.training import TrainConfig, train_and_register
from tests.factories import two_taste_groups

SMALL = TrainConfig(epochs=2, batch_size=64, n_factors=4, device="cpu")


def test_a_run_is_registered_ready_with_metrics_and_becomes_active(
    engine: Engine, tmp_path: Path
) -> None:
    train, _ = two_taste_groups()
    ingest(engine, from_frame("ratings", train, 500))

    first, _ = train_and_register(engine, SMALL, tmp_path, progress=False)
    second, _ = train_and_register(engine, SMALL, tmp_path, progress=False)

    versions = list_versions(engine)
    assert [v.id for v in versions] == [second, first]
    assert [v.is_active for v in versions] == [True, False]
    active = active_version(engine)
    assert active is not None
    assert active.status == "ready"
    assert active.hyperparameters["epochs"] == 2
    assert set(active.metrics) >= {"rmse", "mae", "n_train", "n_valid"}
    assert load_recommender(active.artifact_path).recommend("u1", n=1).shape == (1, 2)


def test_a_failed_run_is_recorded_and_the_active_version_stays(
    engine: Engine, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="no ratings"):
        train_and_register(engine, SMALL, tmp_path, progress=False)
    (failed,) = list_versions(engine)
    assert failed.status == "failed"
    assert "no ratings" in (failed.error or "")
    assert active_version(engine) is None
