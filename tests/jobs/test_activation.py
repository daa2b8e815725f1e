"""At most one active version per objective, however many activations run at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from recsys.db.engine import write_transaction
from recsys.db.tables import model_versions
from recsys.jobs.model_versions import activate, finish_version, get_version, start_version
from tests.servers import ranking_version


def active_ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(model_versions.c.id).where(
                    model_versions.c.is_active, model_versions.c.objective == "ranking"
                )
            ).scalars()
        )


def twin_versions(engine: Engine, artifact_dir: Path) -> list[int]:
    """A trained ranking version and two more ready ones on the same weights."""
    first = ranking_version(engine, artifact_dir)
    artifact = Path(get_version(engine, first).artifact_path)  # type: ignore[union-attr, arg-type]
    twins = []
    for _ in range(2):
        version_id = start_version(engine, "dot", {}, objective="ranking")
        finish_version(engine, version_id, {}, artifact, activate=False)
        twins.append(version_id)
    return twins


def activate_aligned(engine: Engine, start: threading.Barrier, version_id: int) -> int:
    start.wait()
    return activate(engine, version_id).id


def test_two_activations_at_once_leave_one_active_version(engine: Engine, tmp_path: Path) -> None:
    twins = twin_versions(engine, tmp_path / "artifacts")
    for _ in range(20):
        aligned = partial(activate_aligned, engine, threading.Barrier(2))
        with ThreadPoolExecutor(2) as pool:
            assert sorted(pool.map(aligned, twins)) == twins  # neither refused
        assert len(active_ids(engine)) == 1


def test_the_database_refuses_a_second_active_version(engine: Engine, tmp_path: Path) -> None:
    twins = twin_versions(engine, tmp_path / "artifacts")
    with pytest.raises(IntegrityError), write_transaction(engine) as connection:
        connection.execute(
            update(model_versions).where(model_versions.c.id.in_(twins)).values(is_active=True)
        )
    with engine.connect() as connection:
        active = select(func.count()).where(model_versions.c.is_active)
        assert connection.execute(active).scalar_one() == 1
