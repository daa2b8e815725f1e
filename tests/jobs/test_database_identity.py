"""Two databases sharing one artifact folder: each keeps and serves its own model files."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from recsys.db.engine import make_engine, write_transaction
from recsys.db.identity import ForeignArtifactError, read_identity
from recsys.db.migrate import upgrade
from recsys.db.tables import model_versions
from recsys.jobs.model_versions import ActivationError, activate, get_version
from recsys.serving.loading import load_version
from tests.servers import ranking_version


def test_two_databases_sharing_an_artifact_folder_keep_their_own_models(
    engine: Engine, tmp_path: Path
) -> None:
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(other_url)
    other = make_engine(other_url)
    shared = tmp_path / "shared-artifacts"
    mine, theirs = ranking_version(engine, shared), ranking_version(other, shared)
    assert mine == theirs  # ids start at 1 in each database
    my_file = get_version(engine, mine).artifact_path  # type: ignore[union-attr]
    their_file = get_version(other, theirs).artifact_path  # type: ignore[union-attr]
    assert my_file != their_file
    assert read_identity(engine) != read_identity(other)
    assert read_identity(engine) in my_file  # type: ignore[operator]

    # A version row pointing at the other database's file is never activated nor served.
    with write_transaction(other) as connection:
        connection.execute(
            update(model_versions)
            .where(model_versions.c.id == theirs)
            .values(artifact_path=my_file, is_active=False)
        )
    with pytest.raises(ActivationError, match="another database"):
        activate(other, theirs)
    with pytest.raises(ForeignArtifactError, match="another database"):
        load_version(other, get_version(other, theirs))  # type: ignore[arg-type]
    other.dispose()
