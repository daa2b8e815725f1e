"""The real app on a real, migrated database holding a small trained model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.jobs.training_job import TrainConfig, train_and_register
from recsys.settings import Settings
from tests.factories import two_taste_groups

TRAIN = TrainConfig(
    epochs=30, lr=0.03, wd=0.01, batch_size=64, n_factors=8, valid_pct=0.1, device="cpu"
)


def catalog() -> pd.DataFrame:
    """Twenty films: i0-i9 comedies, i10-i19 horror, plus i20 that nobody rated."""
    return pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(21)],
            "title": [f"{'Comedy' if i < 10 else 'Horror'} number {i}" for i in range(20)]
            + ["Unrated Film"],
            "genres": ["Comedy" if i < 10 else "Horror" for i in range(20)] + ["Drama"],
        }
    )


def file_model_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for the file-served (tabular, vision) endpoints, which never touch the
    database: an empty SQLite file, artifacts under ``tmp_path``, no registry polling."""
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}",
        artifact_dir=tmp_path / "artifacts",
        model_poll_seconds=0,
        **overrides,
    )


@pytest.fixture
def trained_engine(engine: Engine, tmp_path: Path) -> Engine:
    train, _ = two_taste_groups()
    ingest(
        engine, from_frame("ratings", train, 500), items_source=from_frame("items", catalog(), 50)
    )
    train_and_register(engine, TRAIN, tmp_path / "artifacts", progress=False)
    return engine


@pytest.fixture
def client(trained_engine: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def keyed_client(trained_engine: Engine, settings: Settings) -> Iterator[TestClient]:
    keyed = settings.model_copy(update={"api_key": "s3cret"})
    with TestClient(create_app(keyed)) as client:
        yield client
