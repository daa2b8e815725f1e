"""The serving snapshot: a version loads from it without reading the ratings table,
answers as it would from the database, follows what was written since, and falls back
to the database (saying so) when the file is missing, damaged or another version's."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, event
from typer.testing import CliRunner

from recsys.cli import app
from recsys.data.catalog import read_item_catalog
from recsys.db.engine import make_engine
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.jobs.model_versions import ModelVersion, get_version
from recsys.serving.loading import ServedVersion, load_version
from recsys.serving.snapshot import snapshot_path
from tests.servers import ranking_version

USERS = ("u0", "u3", "u7", "u12", "u25")


@pytest.fixture
def version(engine: Engine, tmp_path: Path) -> ModelVersion:
    found = get_version(engine, ranking_version(engine, tmp_path / "artifacts"))
    assert found is not None
    assert found.artifact_path is not None
    return found


def answers(served: ServedVersion) -> dict[str, list[str]]:
    return {u: list(served.recommender.recommend(u, n=10).item_ids) for u in USERS}


def popular(served: ServedVersion) -> list[str]:
    return list(served.catalog.by_popularity["item_id"][:10])


def test_the_training_job_writes_a_snapshot_that_serves_as_the_database_would(
    engine: Engine, version: ModelVersion, caplog: pytest.LogCaptureFixture
) -> None:
    assert version.artifact_path is not None
    path = snapshot_path(version.artifact_path)
    from_file = load_version(engine, version)
    assert not from_file.recommender.seen.indices.flags.writeable  # mapped, read-only
    assert not caplog.records

    path.unlink()
    with caplog.at_level(logging.WARNING, "recsys.serving"):
        from_database = load_version(engine, version)
    assert "no serving snapshot" in caplog.text

    assert answers(from_file) == answers(from_database)
    assert popular(from_file) == popular(from_database)
    counts = from_database.catalog.frame[["n_ratings", "mean_rating"]]
    pd.testing.assert_frame_equal(from_file.catalog.frame[["n_ratings", "mean_rating"]], counts)
    assert from_file.recommender.seen.through == from_database.recommender.seen.through > 0


# SQLite's trace callback sees every statement, the driver's own cursor's too.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_version_loads_from_its_snapshot_without_reading_the_ratings(
    database_url: str, engine: Engine, version: ModelVersion
) -> None:
    statements: list[str] = []
    watched = make_engine(database_url)

    @event.listens_for(watched, "connect")
    def trace(connection: object, _: object) -> None:
        connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]

    load_version(watched, version)
    reading = [s for s in statements if "FROM ratings" in s]
    # Only the follower's questions: the latest write number (an index's last entry), and
    # what was written after the snapshot's number.
    assert reading
    assert all("ratings.seq >" in s or "max(ratings.seq)" in s for s in reading), reading

    snapshot_path(version.artifact_path).unlink()  # type: ignore[arg-type]
    statements.clear()
    load_version(watched, version)
    assert any("FROM ratings" in s and "seq" not in s for s in statements)  # the full read
    watched.dispose()


def test_ratings_written_after_the_snapshot_are_never_offered(
    engine: Engine, version: ModelVersion
) -> None:
    before = load_version(engine, version).recommender.recommend("u0", n=3)
    rated = pd.DataFrame({"user_id": "u0", "item_id": before.item_ids, "rating": 5.0})
    ingest(engine, from_frame("ratings", rated, 500))

    after = load_version(engine, version).recommender.recommend("u0", n=10)
    assert not set(before.item_ids) & set(after.item_ids)


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage", "another version's", "empty"],
)
def test_an_unusable_snapshot_is_said_and_the_database_serves(
    engine: Engine,
    version: ModelVersion,
    tmp_path: Path,
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert version.artifact_path is not None
    path = snapshot_path(version.artifact_path)
    good = answers(load_version(engine, version))
    if damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 100])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 4096)
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a newer version trained on more ratings, its snapshot copied over this one
        more = pd.DataFrame({"user_id": "someone new", "item_id": ["i1", "i2"], "rating": 4.0})
        ingest(engine, from_frame("ratings", more, 500))
        newer = get_version(engine, ranking_version(engine, tmp_path / "artifacts"))
        shutil.copy(snapshot_path(newer.artifact_path), path)  # type: ignore[union-attr,arg-type]

    with caplog.at_level(logging.WARNING, "recsys.serving"):
        served = load_version(engine, version)
    assert "serving snapshot unusable" in caplog.text
    assert answers(served) == good


def test_models_snapshot_rebuilds_the_active_versions_after_an_ingest(
    engine: Engine, version: ModelVersion, cli_env: str
) -> None:
    assert version.artifact_path is not None
    old = load_version(engine, version)
    extra = pd.DataFrame({"user_id": [f"u{u}" for u in range(30)], "item_id": "i1", "rating": 5.0})
    ingest(engine, from_frame("ratings", extra, 500))

    result = CliRunner().invoke(app, ["models", "snapshot"])
    assert result.exit_code == 0, result.output
    assert f"version {version.id}" in result.output

    rebuilt = load_version(engine, version)
    assert rebuilt.recommender.seen.through > old.recommender.seen.through
    database = read_item_catalog(engine).set_index("item_id")["n_ratings"]
    served = rebuilt.catalog.frame.set_index("item_id")["n_ratings"]
    assert served.to_dict() == database.to_dict()
    assert served["i1"] > old.catalog.frame.set_index("item_id")["n_ratings"]["i1"]
